//! Container networking through berthd: containers on a user-defined
//! network reach each other by name, a published port answers on
//! 127.0.0.1, `--network none` has only `lo`, and `rm` leaves no veth.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

fn host_veths() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vb-"))
        .collect()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[test]
fn names_ports_and_none() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let before = host_veths();

    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        BUSYBOX,
        "ls",
        "/sys/class/net",
    ])?;
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["lo"],
        "{out}"
    );

    daemon.berth_ok(&["network", "create", "e2e-net"])?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "server",
        "--network",
        "e2e-net",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    let out = daemon.berth(&[
        "run",
        "--rm",
        "--name",
        "client",
        "--network",
        "e2e-net",
        BUSYBOX,
        "sh",
        "-c",
        "grep -w server /etc/hosts && ping -c 1 -W 2 server",
    ])?;
    assert!(
        out.status.success(),
        "ping by name failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let port = free_port()?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        &format!("{port}:7000"),
        BUSYBOX,
        "nc",
        "-l",
        "-p",
        "7000",
        "-e",
        "cat",
    ])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let attempt = (|| -> anyhow::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"hello berth\n")?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })();
        match attempt {
            Ok(r) if !r.is_empty() => break r,
            _ if Instant::now() > deadline => {
                anyhow::bail!("published port {port} never echoed: {attempt:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!(reply, "hello berth\n");

    daemon.berth_ok(&["rm", "-f", "server", "echo"])?;
    daemon.berth_ok(&["network", "rm", "e2e-net"])?;
    // Other daemons on this host may come and go; none of ours may stay.
    let left: Vec<String> = host_veths()
        .into_iter()
        .filter(|v| !before.contains(v))
        .collect();
    assert!(left.is_empty(), "veths left behind: {left:?}");
    Ok(())
}
