//! Device rules on the real cgroup v2 hierarchy: the BPF device filter is
//! attached, the kernel holds a process of the cgroup to it (a host device
//! node gives EPERM, /dev/null works), a second `create` replaces it, and
//! removing the cgroup frees it. No descriptor of it stays open here.
//!
//! On the hybrid layout these run on its controller-less v2 mount, where
//! the v1 `devices` controller plays no part: the shell is in the root v1
//! cgroup, which allows every device.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on any error")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_cgroups::{
    CgroupManager, DeviceKind, DeviceRule, Layout, Resources, all_devices, device_filters,
    docker_default, program_loaded,
};
use common::{cgroup_on, leftovers, spawn_in, wait_for};

/// One test at a time: each counts this process's BPF descriptors.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// This host's v2 hierarchy alone, below this process's own cgroup.
fn v2_layout() -> Layout {
    let root = match Layout::detect().unwrap() {
        Layout::Unified { root } => root,
        Layout::Hybrid { unified, .. } => unified,
        Layout::Legacy { .. } => panic!("this host has no cgroup v2 hierarchy to test on"),
    };
    Layout::Unified { root }.nested_in_own_cgroups().unwrap()
}

fn devices(rules: Vec<DeviceRule>) -> Resources {
    Resources {
        devices: rules,
        ..Resources::default()
    }
}

/// Run `script` in the cgroup and return what it printed (to stderr).
fn run_in(cg: &dyn CgroupManager, script: &str) -> String {
    let mut child = spawn_in(cg, &format!("exec 1>&2; {script}"));
    let status = wait_for(&mut child, Duration::from_secs(20)).unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{script}: {status}: {out}");
    out
}

/// Open the host's /dev/kvm and /dev/loop0 for reading, write to
/// /dev/null.
const PROBE: &str = "for d in kvm loop0; do (exec 3</dev/$d) 2>&1 && echo opened-$d; done; \
    echo x > /dev/null && echo null-ok";

/// This process's open BPF program descriptors.
fn bpf_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("bpf-prog"))
        })
        .count()
}

fn v2_dir(cg: &dyn CgroupManager, layout: &Layout) -> PathBuf {
    let Layout::Unified { root } = layout else {
        unreachable!()
    };
    cg.paths()
        .into_iter()
        .find(|p| p.starts_with(root))
        .unwrap()
}

fn wait_unloaded(id: u32) {
    let start = Instant::now();
    // The kernel frees a detached program, and a removed cgroup's ones,
    // from a work queue: soon, not at once.
    while program_loaded(id).unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "program {id} still loaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_filter_denies_host_devices_and_keeps_null_open() {
    let _serial = serial();
    for dev in ["/dev/kvm", "/dev/loop0"] {
        assert!(Path::new(dev).exists(), "this test needs the host's {dev}");
    }
    let fds = bpf_fds();
    let layout = v2_layout();
    let name = common::name("dev-default");
    let cg = cgroup_on(&layout, "dev-default", &devices(docker_default()));
    assert_eq!(bpf_fds(), fds, "a BPF descriptor stayed open");
    let dir = v2_dir(&*cg, &layout);
    let ids = device_filters(&dir).unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");

    let out = run_in(&*cg, PROBE);
    assert!(!out.contains("opened"), "a host device opened: {out}");
    assert_eq!(out.matches("Operation not permitted").count(), 2, "{out}");
    assert!(out.contains("null-ok"), "{out}");

    // A second create replaces the filter: now every device is allowed,
    // and the old program is gone.
    cg.create(&devices(all_devices())).unwrap();
    let replaced = device_filters(&dir).unwrap();
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_ne!(replaced, ids);
    wait_unloaded(ids[0]);
    let out = run_in(&*cg, PROBE);
    assert!(
        out.contains("opened-kvm") && out.contains("opened-loop0") && out.contains("null-ok"),
        "{out}"
    );
    assert_eq!(bpf_fds(), fds, "a BPF descriptor stayed open");

    // Removing the cgroup frees its filter.
    cg.destroy().unwrap();
    assert!(!dir.exists());
    wait_unloaded(replaced[0]);
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
}

#[test]
fn access_bits_hold_for_real() {
    let _serial = serial();
    let rule = |allow, kind, major, minor, access: &str| DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.to_owned(),
    };
    // Read-only /dev/null, and nodes may not be made.
    let rules = vec![
        rule(false, DeviceKind::All, None, None, "rwm"),
        rule(true, DeviceKind::Char, Some(1), Some(3), "r"),
    ];
    let layout = v2_layout();
    let cg = cgroup_on(&layout, "dev-bits", &devices(rules));
    let node = std::env::temp_dir().join(common::name("dev-bits-node"));
    let _ = std::fs::remove_file(&node);
    let out = run_in(
        &*cg,
        &format!(
            "cat /dev/null && echo read-ok; (echo x > /dev/null) 2>&1 || echo write-denied; \
             mknod {0} c 1 3 2>&1 || echo mknod-denied",
            node.display()
        ),
    );
    let made = node.exists();
    let _ = std::fs::remove_file(&node);
    assert!(out.contains("read-ok"), "{out}");
    assert!(out.contains("write-denied"), "{out}");
    assert!(out.contains("mknod-denied") && !made, "{out}");
}

#[test]
fn the_hosts_own_layout_attaches_the_filter_in_its_v2_hierarchy() {
    let _serial = serial();
    // On the hybrid layout, on top of the v1 devices controller; on a
    // unified host, alone.
    let layout = common::layout();
    let cg = cgroup_on(&layout, "dev-host", &devices(docker_default()));
    let v2 = match &layout {
        Layout::Hybrid { unified, .. } => unified.clone(),
        Layout::Unified { root } => root.clone(),
        Layout::Legacy { .. } => panic!("this host has no cgroup v2 hierarchy to test on"),
    };
    let dir = cg.paths().into_iter().find(|p| p.starts_with(&v2)).unwrap();
    assert_eq!(device_filters(&dir).unwrap().len(), 1);
    let out = run_in(&*cg, PROBE);
    assert!(!out.contains("opened"), "a host device opened: {out}");
    assert!(out.contains("null-ok"), "{out}");
}

#[test]
fn no_rules_attach_no_filter() {
    let _serial = serial();
    let layout = v2_layout();
    let cg = cgroup_on(&layout, "dev-none", &Resources::default());
    let dir = v2_dir(&*cg, &layout);
    assert_eq!(device_filters(&dir).unwrap(), Vec::<u32>::new());
}
