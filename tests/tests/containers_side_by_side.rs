//! Two daemons side by side: one starting must not take the other's
//! running containers for its own leftovers. Its own test binary, so it
//! does not run alongside the other network tests (a starting daemon still
//! sweeps bridges it has no record of: see the note on reconcile).

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
