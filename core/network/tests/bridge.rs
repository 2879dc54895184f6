#![allow(clippy::unwrap_used, reason = "tests fail loudly on any error")]
//! Bridge networks for real: namespaces, veths, bridges, iptables, as root.

mod common;

use std::io::{Read, Write};

use berth_network::{
    EndpointSpec, NetworkError, NetworkMode, Networks, PortSpec, host_links, links_in,
    masquerade_installed, publish,
};
use common::{HostCleanup, Netns, config, run, tcp_echo_in, udp_echo_in};

fn open(n: u8, nat: bool) -> (tempfile::TempDir, Networks, HostCleanup) {
    let dir = tempfile::tempdir().unwrap();
    let state = berth_state::State::open(dir.path()).unwrap();
    let cleanup = HostCleanup {
        // Bridges, default bridge, host veths, and the container end's
        // temporary name ("bp" + the veth name's last 13 characters).
        prefixes: vec![
            format!("bt{n}-"),
            format!("bt{n}def"),
            format!("vt{n}-"),
            format!("bp{n}-"),
        ],
    };
    (
        dir,
        Networks::open(&state, config(n, nat)).unwrap(),
        cleanup,
    )
}

fn spec(alias: &str, ns: &Netns) -> EndpointSpec {
    EndpointSpec {
        aliases: vec![alias.to_owned()],
        hostname: Some(alias.to_owned()),
        extra_hosts: vec!["gateway.test:10.213.99.1".parse().unwrap()],
        hosts_path: Some(ns.hosts_path()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_reach_each_other_by_name() {
    // With NAT on, the network's FORWARD accept rules are installed, so the
    // test passes even where br_netfilter and a DROP policy filter bridged
    // traffic.
    let (_dir, nets, _cleanup) = open(1, true);
    let app = nets.create("app", None).unwrap();
    assert!(app.user_defined);
    let a = Netns::new("bnt-a");
    let b = Netns::new("bnt-b");
    let ea = nets
        .attach(&a.path(), "a1a1a1a1a1a1a1a1", "app", spec("alpha", &a))
        .await
        .unwrap();
    let eb = nets
        .attach(&b.path(), "b2b2b2b2b2b2b2b2", "app", spec("beta", &b))
        .await
        .unwrap();
    assert_ne!(ea.ip, eb.ip);
    assert!(app.subnet.contains(ea.ip) && app.subnet.contains(eb.ip));

    // Each container's hosts file names the other (rewritten when b joined).
    let hosts_a = std::fs::read_to_string(a.hosts_path()).unwrap();
    let hosts_b = std::fs::read_to_string(b.hosts_path()).unwrap();
    assert!(hosts_a.contains(&format!("{}\tbeta", eb.ip)), "{hosts_a}");
    assert!(hosts_b.contains(&format!("{}\talpha", ea.ip)), "{hosts_b}");
    assert!(
        hosts_a.contains(&format!("{}\talpha", ea.ip)),
        "own hostname: {hosts_a}"
    );
    assert!(hosts_a.contains("10.213.99.1\tgateway.test"), "{hosts_a}");

    // Inside: eth0 + lo, and b answers by IP and by name (`ip netns exec`
    // bind-mounts /etc/netns/NAME/hosts over /etc/hosts).
    let mut links = links_in(&a.path()).await.unwrap();
    links.sort();
    assert_eq!(links, ["eth0", "lo"]);
    let by_ip = a.exec(&["busybox", "ping", "-c1", "-W2", &eb.ip.to_string()]);
    assert!(by_ip.status.success(), "{by_ip:?}");
    let by_name = b.exec(&["busybox", "ping", "-c1", "-W2", "alpha"]);
    assert!(by_name.status.success(), "{by_name:?}");
    let route = run("ip", &["-n", &a.name, "route", "show", "default"]);
    assert!(route.contains(&format!("via {}", app.gateway)), "{route}");

    // The default `bridge` network does no service discovery.
    let c = Netns::new("bnt-c");
    nets.attach(&c.path(), "c3c3c3c3c3c3c3c3", "bridge", spec("gamma", &c))
        .await
        .unwrap();
    let hosts_c = std::fs::read_to_string(c.hosts_path()).unwrap();
    assert!(
        !hosts_c.contains("alpha") && !hosts_c.contains("beta"),
        "{hosts_c}"
    );

    // One container on two networks gets eth1 for the second; its default
    // route stays on the first.
    nets.attach(&a.path(), "a1a1a1a1a1a1a1a1", "bridge", spec("alpha", &a))
        .await
        .unwrap();
    let mut links = links_in(&a.path()).await.unwrap();
    links.sort();
    assert_eq!(links, ["eth0", "eth1", "lo"]);
    let route = run("ip", &["-n", &a.name, "route", "show", "default"]);
    assert!(route.contains(&format!("via {}", app.gateway)), "{route}");
    let hosts_a = std::fs::read_to_string(a.hosts_path()).unwrap();
    assert!(hosts_a.contains("beta"), "{hosts_a}");

    // When b leaves, a's hosts file forgets it.
    nets.detach("b2b2b2b2b2b2b2b2", "app").await.unwrap();
    let hosts_a = std::fs::read_to_string(a.hosts_path()).unwrap();
    assert!(!hosts_a.contains("beta"), "{hosts_a}");
    nets.detach_all("a1a1a1a1a1a1a1a1").await.unwrap();
    nets.detach_all("c3c3c3c3c3c3c3c3").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_has_only_loopback_and_host_does_nothing() {
    let (_dir, nets, _cleanup) = open(2, false);
    let ns = Netns::new("bnt-none");
    let ep = nets
        .connect(
            &NetworkMode::None,
            &ns.path(),
            "dddddddddddd0004",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    assert!(ep.is_none());
    assert_eq!(links_in(&ns.path()).await.unwrap(), ["lo"]);
    let lo = ns.exec(&["busybox", "ping", "-c1", "-W1", "127.0.0.1"]);
    assert!(lo.status.success(), "lo is up: {lo:?}");

    let host = nets
        .connect(
            &"host".parse().unwrap(),
            &ns.path(),
            "dddddddddddd0005",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    assert!(host.is_none());
    // Other tests add and remove links concurrently: look only at ours.
    let ours = host_links().await.unwrap();
    assert!(
        !ours
            .iter()
            .any(|l| l.starts_with("bt2") || l.starts_with("vt2-")),
        "{ours:?}"
    );
    assert_eq!(links_in(&ns.path()).await.unwrap(), ["lo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_port_answers_on_loopback() {
    let (_dir, nets, _cleanup) = open(3, false);
    let ns = Netns::new("bnt-pub");
    let ep = nets
        .attach(
            &ns.path(),
            "eeeeeeeeeeee0006",
            "bridge",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    tcp_echo_in(&ns.path(), 8080);
    udp_echo_in(&ns.path(), 5353);

    // Host port 0: the kernel picks one, so parallel runs never collide.
    let tcp = publish(&"0:8080".parse::<PortSpec>().unwrap(), ep.ip.into())
        .await
        .unwrap();
    let port = tcp.local_addr().port();
    let reply = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.write_all(b"hello berth").unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert_eq!(reply, "hello berth");

    let udp = publish(
        &"127.0.0.1:0:5353/udp".parse::<PortSpec>().unwrap(),
        ep.ip.into(),
    )
    .await
    .unwrap();
    let port = udp.local_addr().port();
    let reply = tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        socket.send_to(b"ping", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    })
    .await
    .unwrap();
    assert_eq!(reply, b"ping");

    // Dropping the guard stops listening.
    drop(tcp);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    nets.detach_all("eeeeeeeeeeee0006").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_removes_veth_and_frees_address() {
    let (_dir, nets, _cleanup) = open(4, false);
    let veths = || async {
        host_links()
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.starts_with("vt4-"))
            .collect::<Vec<_>>()
    };
    let a = Netns::new("bnt-d1");
    let b = Netns::new("bnt-d2");
    let ea = nets
        .attach(
            &a.path(),
            "f7f7f7f7f7f7f7f7",
            "bridge",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    let eb = nets
        .attach(
            &b.path(),
            "f8f8f8f8f8f8f8f8",
            "bridge",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    assert_eq!(veths().await.len(), 2);
    // The container end was made inside the namespace as eth0 with the
    // endpoint's MAC; the host end is on the bridge and up.
    let mac = a.exec(&["cat", "/sys/class/net/eth0/address"]);
    assert_eq!(
        String::from_utf8_lossy(&mac.stdout).trim(),
        ea.mac,
        "{mac:?}"
    );
    let host_end = std::path::Path::new("/sys/class/net").join(&ea.veth_host);
    let master = std::fs::read_link(host_end.join("master")).unwrap();
    assert!(master.ends_with("bt4def"), "{master:?}");
    let flags = std::fs::read_to_string(host_end.join("flags")).unwrap();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP on {}", ea.veth_host);
    assert!(matches!(
        nets.attach(
            &a.path(),
            "f7f7f7f7f7f7f7f7",
            "bridge",
            EndpointSpec::default()
        )
        .await,
        Err(NetworkError::AlreadyAttached { .. })
    ));

    nets.detach("f7f7f7f7f7f7f7f7", "bridge").await.unwrap();
    // Gone from sysfs too (the last place a link shows) once detach returns.
    assert!(
        !host_end.exists(),
        "{} still in /sys/class/net",
        ea.veth_host
    );
    assert_eq!(veths().await, std::slice::from_ref(&eb.veth_host));
    assert_eq!(links_in(&a.path()).await.unwrap(), ["lo"]);
    assert!(matches!(
        nets.detach("f7f7f7f7f7f7f7f7", "bridge").await,
        Err(NetworkError::NotAttached { .. })
    ));

    // The freed address is the first one handed out again.
    let again = nets
        .attach(
            &a.path(),
            "f9f9f9f9f9f9f9f9",
            "bridge",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.ip, ea.ip);

    nets.detach_all("f9f9f9f9f9f9f9f9").await.unwrap();
    nets.detach_all("f8f8f8f8f8f8f8f8").await.unwrap();
    assert!(veths().await.is_empty());
    assert!(nets.inspect("bridge").unwrap().endpoints.is_empty());
    assert!(nets.reconcile().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_failure_leaves_nothing() {
    let (_dir, nets, _cleanup) = open(5, false);
    let missing = std::path::Path::new("/var/run/netns/berth-test-does-not-exist");
    let err = nets
        .attach(
            missing,
            "999999999999000a",
            "bridge",
            EndpointSpec::default(),
        )
        .await;
    assert!(matches!(err, Err(NetworkError::Netns { .. })), "{err:?}");
    assert!(nets.inspect("bridge").unwrap().endpoints.is_empty());
    assert!(
        !host_links()
            .await
            .unwrap()
            .iter()
            .any(|l| l.starts_with("vt5-"))
    );
    assert!(matches!(
        nets.attach(missing, "999999999999000a", "nope", EndpointSpec::default())
            .await,
        Err(NetworkError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_network_removes_bridge_and_nat_rule() {
    let (_dir, nets, _cleanup) = open(6, true);
    let net = nets.create("egress", None).unwrap();
    let ns = Netns::new("bnt-nat");
    nets.attach(
        &ns.path(),
        "0b0b0b0b0b0b0b0b",
        "egress",
        EndpointSpec::default(),
    )
    .await
    .unwrap();
    assert!(host_links().await.unwrap().contains(&net.bridge_name));
    assert!(masquerade_installed(&net).unwrap());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );
    // A second attach re-ensures the rules; there must still be one copy.
    let ns2 = Netns::new("bnt-nat2");
    nets.attach(
        &ns2.path(),
        "0c0c0c0c0c0c0c0c",
        "egress",
        EndpointSpec::default(),
    )
    .await
    .unwrap();
    let nat = run("iptables", &["-w", "-t", "nat", "-S", "POSTROUTING"]);
    let tag = format!("berth:{}", net.bridge_name);
    assert_eq!(nat.lines().filter(|l| l.contains(&tag)).count(), 1, "{nat}");

    assert!(matches!(
        nets.remove("egress").await,
        Err(NetworkError::InUse { count: 2, .. })
    ));
    assert!(matches!(
        nets.remove("bridge").await,
        Err(NetworkError::Predefined(_))
    ));
    nets.detach_all("0b0b0b0b0b0b0b0b").await.unwrap();
    nets.detach_all("0c0c0c0c0c0c0c0c").await.unwrap();
    nets.remove("egress").await.unwrap();

    assert!(!host_links().await.unwrap().contains(&net.bridge_name));
    assert!(!masquerade_installed(&net).unwrap());
    let filter = run("iptables", &["-w", "-S", "FORWARD"]);
    assert!(!filter.contains(&tag), "{filter}");
    assert!(nets.inspect("egress").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_removes_what_a_crash_left() {
    let (_dir, nets, _cleanup) = open(7, true);
    let ns = Netns::new("bnt-rec");
    let kept = nets
        .attach(
            &ns.path(),
            "7a7a7a7a7a7a7a7a",
            "bridge",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    // A veth and a bridge with our prefixes that no record owns, and a NAT
    // rule tagged for that bridge, as a crash mid-attach or mid-rm leaves.
    run(
        "ip",
        &[
            "link",
            "add",
            "vt7-stray",
            "type",
            "veth",
            "peer",
            "name",
            "vt7-strayp",
        ],
    );
    run("ip", &["link", "add", "bt7-stray", "type", "bridge"]);
    run(
        "iptables",
        &[
            "-w",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "10.213.127.0/24",
            "!",
            "-o",
            "bt7-stray",
            "-j",
            "MASQUERADE",
            "-m",
            "comment",
            "--comment",
            "berth:bt7-stray",
        ],
    );
    let mut removed = nets.reconcile().await.unwrap();
    removed.sort();
    // Either end of the stray pair may be found first; deleting it takes both.
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(removed[0], "bt7-stray");
    assert!(removed[1].starts_with("vt7-stray"), "{removed:?}");
    let links = host_links().await.unwrap();
    assert!(links.contains(&kept.veth_host), "{links:?}");
    assert!(!links.iter().any(|l| l.contains("stray")), "{links:?}");
    let rules = run("iptables", &["-w", "-t", "nat", "-S", "POSTROUTING"]);
    assert!(!rules.contains("berth:bt7-stray"), "{rules}");
    nets.detach_all("7a7a7a7a7a7a7a7a").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_deleted_behind_our_back_is_made_again() {
    // The bridge's index is remembered from the first attach; an attach
    // after someone deleted the bridge fails plainly and leaves nothing,
    // and the next one makes the bridge again.
    let (_dir, nets, _cleanup) = open(8, false);
    let a = Netns::new("bnt-gone-a");
    let b = Netns::new("bnt-gone-b");
    nets.attach(
        &a.path(),
        "8a8a8a8a8a8a8a8a",
        "bridge",
        EndpointSpec::default(),
    )
    .await
    .unwrap();
    nets.detach_all("8a8a8a8a8a8a8a8a").await.unwrap();
    run("ip", &["link", "del", "bt8def"]);
    let err = nets
        .attach(
            &b.path(),
            "8b8b8b8b8b8b8b8b",
            "bridge",
            EndpointSpec::default(),
        )
        .await;
    assert!(
        matches!(&err, Err(NetworkError::LinkNotFound(name)) if name == "bt8def"),
        "{err:?}"
    );
    assert!(nets.inspect("bridge").unwrap().endpoints.is_empty());
    let ours = |l: &String| l.starts_with("vt8-");
    assert!(!host_links().await.unwrap().iter().any(ours));
    assert_eq!(links_in(&b.path()).await.unwrap(), ["lo"]);

    let ep = nets
        .attach(
            &b.path(),
            "8b8b8b8b8b8b8b8b",
            "bridge",
            EndpointSpec::default(),
        )
        .await
        .unwrap();
    let master = std::fs::read_link(
        std::path::Path::new("/sys/class/net")
            .join(&ep.veth_host)
            .join("master"),
    )
    .unwrap();
    assert!(master.ends_with("bt8def"), "{master:?}");
    nets.detach_all("8b8b8b8b8b8b8b8b").await.unwrap();
}
