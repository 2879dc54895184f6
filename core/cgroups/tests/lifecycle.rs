//! Freezing, killing and tearing down cgroups for real. One conformance
//! procedure runs on every manager this host can drive: its own layout,
//! its v1 hierarchies alone (no unified tracking), and its v2 hierarchy.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on any error")]

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::time::Duration;

use berth_cgroups::{CgroupManager, Layout, Limit, Resources, Signal};
use common::{cgroup, cgroup_on, leftovers, spawn_in, wait_for};

/// The number a counter script last wrote, if the file is complete.
fn counter(file: &PathBuf) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Freeze a counter, see that it stops; thaw it, see that it goes on.
fn freeze_stops_a_counter(cg: &dyn CgroupManager, test: &str) {
    let file = std::env::temp_dir().join(common::name(test));
    let mut child = spawn_in(
        cg,
        &format!(
            "i=0; while :; do i=$((i+1)); echo $i > {}.tmp && mv {0}.tmp {0}; done",
            file.display()
        ),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!cg.frozen().unwrap());
    cg.freeze().unwrap();
    assert!(cg.frozen().unwrap());
    let frozen_at = counter(&file);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(&file), frozen_at, "counter moved while frozen");
    // A signal other than SIGKILL leaves a paused cgroup paused.
    cg.kill_all(Signal::SIGCONT).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counter(&file), frozen_at, "kill_all thawed the cgroup");
    cg.thaw().unwrap();
    assert!(!cg.frozen().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let resumed = counter(&file);
    assert!(resumed > frozen_at, "{resumed} <= {frozen_at}");
    eprintln!("{test}: frozen at {frozen_at}, resumed to {resumed}");
    cg.kill_all(Signal::SIGKILL).unwrap();
    let status = wait_for(&mut child, Duration::from_secs(10)).unwrap();
    assert_eq!(status.signal(), Some(9));
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(file.with_extension("tmp"));
}

/// What every `CgroupManager` must do on the host, whatever the layout.
fn conformance(layout: &Layout, test: &str) {
    let name = common::name(test);
    let cg = cgroup_on(layout, test, &Resources::default());
    assert!(!cg.paths().is_empty());
    // Placement: the process, and only it, is listed.
    // exec: the shell must not fork, or two processes are listed.
    let mut sleeper = spawn_in(&*cg, "exec sleep 60");
    let pid = i32::try_from(sleeper.id()).unwrap();
    assert_eq!(cg.procs().unwrap(), [pid]);
    // Signals other than SIGKILL reach every process.
    cg.kill_all(Signal::SIGTERM).unwrap();
    let status = wait_for(&mut sleeper, Duration::from_secs(10)).unwrap();
    assert_eq!(status.signal(), Some(15));
    // Freeze and thaw, and stats that count the work done.
    freeze_stops_a_counter(&*cg, test);
    assert!(cg.stats().unwrap().cpu_usage_ns > 0, "{:?}", cg.stats());
    assert!(!cg.oom_killed().unwrap());
    // Teardown kills what is left and removes every directory, twice.
    let mut last = spawn_in(&*cg, "sleep 60");
    cg.destroy().unwrap();
    let status = wait_for(&mut last, Duration::from_secs(10)).unwrap();
    assert_eq!(status.signal(), Some(9));
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
    cg.destroy().unwrap();
}

#[test]
fn conformance_on_the_host_layout() {
    conformance(&common::layout(), "conf-host");
}

#[test]
fn conformance_on_v1_alone() {
    conformance(&v1_layout(), "conf-v1");
}

#[test]
fn conformance_on_v2() {
    conformance(&v2_layout().nested_in_own_cgroups().unwrap(), "conf-v2");
}

#[test]
fn destroy_kills_and_leaves_no_directory_in_any_hierarchy() {
    let name = common::name("destroy");
    let cg = cgroup(
        "destroy",
        &Resources {
            memory: Some(Limit::Max(64 << 20)),
            pids_limit: Some(Limit::Max(100)),
            ..Resources::default()
        },
    );
    let paths = cg.paths();
    assert!(paths.len() >= 2, "{paths:?}");
    for path in &paths {
        assert!(path.is_dir(), "{} missing", path.display());
    }
    let mut children: Vec<_> = (0..3)
        .map(|_| spawn_in(&*cg, "sleep 60 & sleep 60 & wait"))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert!(cg.procs().unwrap().len() >= 9, "{:?}", cg.procs().unwrap());
    cg.destroy().unwrap();
    for child in &mut children {
        let status = wait_for(child, Duration::from_secs(10)).unwrap();
        assert_eq!(status.signal(), Some(9));
    }
    for path in &paths {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
    // Idempotent, including through the drop guard after this.
    cg.destroy().unwrap();
    assert!(cg.procs().unwrap().is_empty());
}

/// The v2 hierarchy of this host: the whole of it on a unified host, the
/// controller-less one of the hybrid layout otherwise.
fn v2_layout() -> Layout {
    match Layout::detect().unwrap() {
        Layout::Unified { root } => Layout::Unified { root },
        Layout::Hybrid { unified, .. } => Layout::Unified { root: unified },
        Layout::Legacy { .. } => panic!("this host has no cgroup v2 hierarchy to test on"),
    }
}

/// The host's v1 hierarchies without the unified one: no `cgroup.kill`,
/// so `kill_all` freezes, signals every pid and thaws.
fn v1_layout() -> Layout {
    match common::layout() {
        Layout::Legacy { controllers } | Layout::Hybrid { controllers, .. } => {
            Layout::Legacy { controllers }
        }
        Layout::Unified { .. } => panic!("this host has no cgroup v1 hierarchies"),
    }
}

#[test]
fn v2_limit_without_its_controller_is_a_clear_error() {
    let Layout::Hybrid { unified, .. } = Layout::detect().unwrap() else {
        // On a unified host the limit works; that is the other tests' job.
        return;
    };
    let layout = Layout::Unified { root: unified };
    let name = common::name("v2-nomem");
    let cg = berth_cgroups::manager_for(&layout, std::path::Path::new(&name));
    let err = cg
        .create(&Resources {
            memory: Some(Limit::Max(64 << 20)),
            ..Resources::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("memory.max is missing"), "{err}");
    cg.destroy().unwrap();
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
}

#[test]
fn legacy_v1_kills_a_forking_tree_by_freezing_and_signalling() {
    let layout = v1_layout();
    let name = common::name("legacy");
    let cg = cgroup_on(&layout, "legacy", &Resources::default());
    // Keeps forking short-lived children while we kill it.
    let mut tree = spawn_in(
        &*cg,
        "while :; do sleep 0.01 & sleep 60 & sleep 0.001; done",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(cg.procs().unwrap().len() > 5);
    cg.kill_all(Signal::SIGKILL).unwrap();
    let status = wait_for(&mut tree, Duration::from_secs(10)).unwrap();
    assert_eq!(status.signal(), Some(9));
    cg.destroy().unwrap();
    assert!(cg.procs().unwrap().is_empty());
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
}
