//! Many create/start/rm cycles through berthd and the CLI leave nothing
//! behind: mounts, cgroup directories, veth interfaces, berthd file
//! descriptors, processes, container records, network endpoints, files
//! under ROOT/containers, snapshots.
//!
//! `BERTH_LEAK_CYCLES=N` runs N cycles (default 120: 100 with
//! `--network none`, every sixth on the bridge, so 20 there); half the
//! cycles remove a running container with `rm -f`, half one that exited.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Footprint {
    mounts: usize,
    cgroup_dirs: BTreeSet<String>,
    veths: BTreeSet<String>,
    berthd_fds: usize,
    processes_in_root: usize,
    records: usize,
    container_files: usize,
    snapshots: usize,
    endpoints: usize,
}

fn count_dir(p: &Path) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

fn subdirs(p: &Path) -> BTreeSet<String> {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Container cgroup directories in every hierarchy (`HIERARCHY/ID`).
fn cgroup_dirs() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let name = h.file_name().to_string_lossy().into_owned();
        for id in subdirs(&h.path().join("berth")) {
            all.insert(format!("{name}/{id}"));
        }
    }
    all
}

/// The footprint once it holds still: a shim exits just after it wrote
/// `exit.json` (which `rm` waits for), and berthd reaps it a moment later.
fn settled_footprint(daemon: &Berthd) -> Footprint {
    let mut last = footprint(daemon);
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let now = footprint(daemon);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn footprint(daemon: &Berthd) -> Footprint {
    let root = daemon.root.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&root)))
        .count();
    let cgroup_dirs = cgroup_dirs();
    let veths = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vb-"))
        .collect();
    let pid = daemon.pid().unwrap();
    let berthd_fds = count_dir(Path::new(&format!("/proc/{pid}/fd")));
    // Shims (their --dir) and container processes (their root) under ROOT.
    let processes_in_root = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy() != pid.to_string())
        .filter(|e| {
            let p = e.path();
            let cmd = std::fs::read(p.join("cmdline")).unwrap_or_default();
            let in_cmd = String::from_utf8_lossy(&cmd).contains(&root);
            let in_root = std::fs::read_link(p.join("root"))
                .is_ok_and(|r| r.to_string_lossy().starts_with(&root));
            in_cmd || in_root
        })
        .count();
    let records = daemon
        .berth_ok(&["ps", "-a", "-q"])
        .unwrap()
        .lines()
        .count();
    let net: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["network", "inspect", "bridge"]).unwrap()).unwrap();
    let endpoints = net["endpoints"].as_array().map_or(0, Vec::len);
    Footprint {
        mounts,
        cgroup_dirs,
        veths,
        berthd_fds,
        processes_in_root,
        records,
        container_files: count_dir(&daemon.root.join("containers")),
        snapshots: count_dir(&daemon.root.join("snapshots").join("snapshots")),
        endpoints,
    }
}

impl Footprint {
    fn summary(&self) -> String {
        format!(
            "mounts={} cgroup_dirs={} veths={} berthd_fds={} processes={} records={} container_files={} snapshots={} endpoints={}",
            self.mounts,
            self.cgroup_dirs.len(),
            self.veths.len(),
            self.berthd_fds,
            self.processes_in_root,
            self.records,
            self.container_files,
            self.snapshots,
            self.endpoints
        )
    }
}

fn cycle(daemon: &Berthd, i: usize) {
    let network = if i % 6 == 5 { "bridge" } else { "none" };
    let running = i.is_multiple_of(2);
    let cmd: &[&str] = if running {
        &["sleep", "100"]
    } else {
        &["true"]
    };
    let mut args = vec!["create", "--network", network, BUSYBOX];
    args.extend_from_slice(cmd);
    let id = daemon.berth_ok(&args).unwrap().trim().to_string();
    daemon.berth_ok(&["start", &id]).unwrap();
    if running {
        daemon.berth_ok(&["rm", "-f", &id]).unwrap();
    } else {
        assert_eq!(daemon.berth_ok(&["wait", &id]).unwrap().trim(), "0");
        daemon.berth_ok(&["rm", &id]).unwrap();
    }
}

#[test]
fn create_start_rm_cycles_leave_nothing_behind() -> anyhow::Result<()> {
    let cycles: usize = match std::env::var("BERTH_LEAK_CYCLES") {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("BERTH_LEAK_CYCLES={v:?} is not a number"))?,
        Err(_) => 120,
    };
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    // Warm-up: the first container opens what berthd keeps for good (the
    // bridge, netlink sockets, sled trees).
    for i in [0, 1, 5] {
        cycle(&daemon, i);
    }
    let before = settled_footprint(&daemon);
    let started = Instant::now();
    for i in 0..cycles {
        cycle(&daemon, i);
    }
    let elapsed = started.elapsed();
    let after = settled_footprint(&daemon);
    eprintln!(
        "{cycles} create/start/rm cycles in {:.1} s ({:.0} ms each)\nbefore: {}\nafter:  {}",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / cycles.max(1) as f64,
        before.summary(),
        after.summary()
    );
    // Other daemons on this machine may add veths and cgroups meanwhile;
    // ours must not.
    let new_veths: Vec<&String> = after.veths.difference(&before.veths).collect();
    assert!(new_veths.is_empty(), "veths left: {new_veths:?}");
    let new_cgroups: Vec<&String> = after.cgroup_dirs.difference(&before.cgroup_dirs).collect();
    assert!(new_cgroups.is_empty(), "cgroups left: {new_cgroups:?}");
    let unshared = |f: Footprint| Footprint {
        veths: BTreeSet::new(),
        cgroup_dirs: BTreeSet::new(),
        ..f
    };
    assert_eq!(unshared(after), unshared(before.clone()));
    assert_eq!(before.records, 0);
    assert_eq!(before.container_files, 0);
    assert_eq!(before.processes_in_root, 0);
    Ok(())
}
