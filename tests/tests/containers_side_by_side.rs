//! Two daemons side by side: one starting must not take the other's
//! running containers for its own leftovers. Its own test binary, so it
//! does not run alongside the other network tests (a starting daemon still
//! sweeps bridges carrying its prefix that it has no record of, so daemons
//! side by side on bridge networks give each its own `[network]` section).

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

fn host_veths() -> Vec<String> {
    links()
        .into_iter()
        .filter(|n| n.starts_with("vb-"))
        .collect()
}

#[test]
fn a_second_daemon_starting_leaves_the_first_ones_links_alone() -> anyhow::Result<()> {
    let first = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&first)?;
    let id = first.berth_ok(&["run", "-d", BUSYBOX, "sleep", "60"])?;
    let id = id.trim().to_string();
    // Host veths are named vb-ID[..8]…; other tests run containers meanwhile.
    let mine: Vec<String> = host_veths()
        .into_iter()
        .filter(|v| v.starts_with(&format!("vb-{}", &id[..8])))
        .collect();
    assert_eq!(mine.len(), 1, "one veth for container {id}: {mine:?}");
    // A second daemon's start-up repair must not take it for a leftover.
    let second = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    assert!(
        host_veths().contains(&mine[0]),
        "{} was removed by the second daemon; its log:\n{}",
        mine[0],
        second.log()
    );
    first.berth_ok(&["rm", "-f", &id])?;
    assert!(!host_veths().contains(&mine[0]), "rm removes the veth");
    Ok(())
}

fn links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Daemons side by side with their own `[network]` sections: each keeps
/// its bridges, addresses and links, and neither's start-up repair takes
/// the other's user-defined network for a leftover.
#[test]
fn daemons_with_their_own_network_sections_keep_their_networks() -> anyhow::Result<()> {
    let config = |n: u8| {
        format!(
            "{}[network]\nbridge = \"bsb{n}\"\nsubnet = \"10.219.{n}.0/24\"\npool = \"10.22{n}.0.0/16\"\nbridge_prefix = \"sb{n}-\"\nveth_prefix = \"wb{n}-\"\n",
            Berthd::CONFIG_AUTH_NONE
        )
    };
    let first = Berthd::start(&config(1))?;
    import_busybox(&first)?;
    first.berth_ok(&["network", "create", "mine"])?;
    let ip_of = |d: &Berthd, c: &str| -> anyhow::Result<String> {
        let out = d.berth_ok(&["exec", c, "sh", "-c", "ip -4 -o addr show eth0"])?;
        Ok(out
            .split_whitespace()
            .nth(3)
            .unwrap_or_default()
            .to_string())
    };
    first.berth_ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "mine",
        BUSYBOX,
        "sleep",
        "120",
    ])?;
    first.berth_ok(&[
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "mine",
        BUSYBOX,
        "sleep",
        "120",
    ])?;
    let bridge = links()
        .into_iter()
        .find(|l| l.starts_with("sb1-"))
        .ok_or_else(|| anyhow::anyhow!("no sb1- bridge for the first daemon's network"))?;
    assert!(
        ip_of(&first, "a")?.starts_with("10.221."),
        "{}",
        ip_of(&first, "a")?
    );

    let second = Berthd::start(&config(2))?;
    import_busybox(&second)?;
    second.berth_ok(&["run", "-d", "--name", "c", BUSYBOX, "sleep", "120"])?;
    assert!(
        ip_of(&second, "c")?.starts_with("10.219.2."),
        "{}",
        ip_of(&second, "c")?
    );
    assert!(
        links().contains(&"bsb2".to_string()),
        "the second daemon's bridge"
    );
    assert!(
        links().contains(&bridge),
        "{bridge} was removed by the second daemon; its log:\n{}",
        second.log()
    );
    // The first daemon's containers still reach each other by name.
    first.berth_ok(&["exec", "a", "ping", "-c", "1", "-W", "2", "b"])?;

    for (d, c) in [(&first, "a"), (&first, "b"), (&second, "c")] {
        d.berth_ok(&["rm", "-f", c])?;
    }
    first.berth_ok(&["network", "rm", "mine"])?;
    assert!(
        !links()
            .iter()
            .any(|l| l.starts_with("wb1-") || l.starts_with("wb2-"))
    );
    Ok(())
}
