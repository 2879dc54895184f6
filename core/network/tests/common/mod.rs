//! Test fixtures: namespaces, links and rules that clean up after
//! themselves even when a test fails, and per-test address pools so tests
//! running in parallel never share a bridge or a subnet.
//!
//! Every address is in 10.213.0.0/16 and lives only on interfaces these
//! tests create.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use berth_network::{NetworkConfig, Subnet};

/// Run a command, panicking with its output when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a command succeeds.
pub fn succeeds(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Test `n` (0..16) owns 10.213.(16n).0/20, bridges `bt<n>…` and veths
/// `vt<n>-…`.
pub fn config(n: u8, nat: bool) -> NetworkConfig {
    let third = n * 16;
    NetworkConfig {
        default_subnet: Subnet::new(Ipv4Addr::new(10, 213, third, 0), 24).unwrap(),
        default_bridge: format!("bt{n}def"),
        pool: Subnet::new(Ipv4Addr::new(10, 213, third, 0), 20).unwrap(),
        bridge_prefix: format!("bt{n}-"),
        veth_prefix: format!("vt{n}-"),
        nat,
    }
}

/// A named network namespace (`ip netns add`), deleted on drop together
/// with its `/etc/netns/<name>` directory, which `ip netns exec` bind-mounts
/// over `/etc` files (that is how a test "container" sees its hosts file).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let name = format!("{name}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        std::fs::create_dir_all(format!("/etc/netns/{name}")).unwrap();
        Netns { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.name))
    }

    pub fn hosts_path(&self) -> PathBuf {
        PathBuf::from(format!("/etc/netns/{}/hosts", self.name))
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// Deletes, on drop, every host link whose name starts with one of the
/// prefixes, and every iptables rule tagged for those bridges.
pub struct HostCleanup {
    pub prefixes: Vec<String>,
}

impl Drop for HostCleanup {
    fn drop(&mut self) {
        let links = Command::new("ip").args(["-o", "link", "show"]).output();
        if let Ok(out) = links {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let Some(name) = line.split(": ").nth(1) else {
                    continue;
                };
                let name = name.split('@').next().unwrap_or(name);
                if self.prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                    let _ = Command::new("ip").args(["link", "del", name]).output();
                }
            }
        }
        for table in ["nat", "filter"] {
            let Ok(out) = Command::new("iptables")
                .args(["-w", "-t", table, "-S"])
                .output()
            else {
                continue;
            };
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let tagged = self
                    .prefixes
                    .iter()
                    .any(|p| line.contains(&format!("berth:{p}")));
                if tagged && line.starts_with("-A ") {
                    let rule: Vec<&str> = line[3..]
                        .split_whitespace()
                        .map(|w| w.trim_matches('"'))
                        .collect();
                    let _ = Command::new("iptables")
                        .args(["-w", "-t", table, "-D"])
                        .args(&rule)
                        .output();
                }
            }
        }
    }
}

/// A TCP echo server inside the namespace at `netns`, on `port`, serving
/// connections until the test ends. Returns once it listens.
pub fn tcp_echo_in(netns: &std::path::Path, port: u16) {
    let file = std::fs::File::open(netns).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Only this thread enters the namespace; the socket stays there.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let listener = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut reader = conn.try_clone().unwrap();
                let _ = std::io::copy(&mut reader, &mut conn);
            });
        }
    });
    rx.recv().unwrap();
}

/// A UDP echo server inside the namespace at `netns`.
pub fn udp_echo_in(netns: &std::path::Path, port: u16) {
    let file = std::fs::File::open(netns).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let socket = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    rx.recv().unwrap();
}
