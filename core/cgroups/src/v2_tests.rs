use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::device_filter::DevicePolicy;
use crate::fs::MemoryFs;

const MB: u64 = 1 << 20;
const ALL: &str = "cpuset cpu io memory pids\n";

fn fake() -> Arc<MemoryFs> {
    let fs = Arc::new(MemoryFs::new());
    fs.seed("/cg2/cgroup.controllers", ALL);
    fs.seed("/cg2/cgroup.subtree_control", "");
    for (file, value) in [
        ("cgroup.procs", ""),
        ("cgroup.controllers", ALL),
        ("cgroup.subtree_control", ""),
        ("cgroup.freeze", "0"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("cpu.max", "max 100000"),
        ("cpu.weight", "100"),
        ("cpuset.cpus", ""),
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("memory.low", "0"),
        ("pids.max", "max"),
        ("io.weight", "default 100"),
    ] {
        fs.template(file, value);
    }
    fs
}

#[test]
fn create_enables_controllers_and_writes_v2_files() {
    let fs = fake();
    let m = V2Manager::new(fs.clone(), Path::new("/cg2"), Path::new("berth/c1"));
    m.create(&Resources {
        cpus: Some(1.5),
        cpu_shares: Some(1024),
        memory: Some(Limit::Max(64 * MB)),
        memory_swap: Some(Limit::Max(96 * MB)),
        memory_reservation: Some(Limit::Max(16 * MB)),
        pids_limit: Some(Limit::Unlimited),
        blkio_weight: Some(500),
        ..Resources::default()
    })
    .unwrap();
    let enabled = |dir: &str| -> Vec<String> {
        fs.writes()
            .into_iter()
            .filter(|(p, _)| p == Path::new(dir).join("cgroup.subtree_control").as_path())
            .map(|(_, v)| v)
            .collect()
    };
    for dir in ["/cg2", "/cg2/berth"] {
        assert_eq!(
            enabled(dir),
            ["+cpu", "+cpuset", "+io", "+memory", "+pids"],
            "{dir}"
        );
    }
    assert!(
        enabled("/cg2/berth/c1").is_empty(),
        "the leaf delegates nothing"
    );
    let get = |f: &str| fs.get(Path::new("/cg2/berth/c1").join(f)).unwrap();
    assert_eq!(get("cpu.max"), "150000 100000");
    assert_eq!(get("cpu.weight"), "39");
    assert_eq!(get("memory.max"), (64 * MB).to_string());
    assert_eq!(get("memory.swap.max"), (32 * MB).to_string(), "swap alone");
    assert_eq!(get("memory.low"), (16 * MB).to_string());
    assert_eq!(get("pids.max"), "max");
    assert_eq!(get("io.weight"), "default 4950");
    m.apply(&Resources {
        cpus: Some(0.0),
        ..Resources::default()
    })
    .unwrap();
    assert_eq!(get("cpu.max"), "max 100000");
}

#[test]
fn missing_controller_names_the_file() {
    let fs = Arc::new(MemoryFs::new());
    fs.seed("/u/cgroup.controllers", "");
    fs.template("cgroup.procs", "");
    let m = V2Manager::new(fs.clone(), Path::new("/u"), Path::new("c1"));
    let err = m
        .create(&Resources {
            memory: Some(Limit::Max(64 * MB)),
            ..Resources::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("memory.max is missing"), "{err}");
    m.destroy().unwrap();
    assert!(!fs.is_dir("/u/c1"));
}

#[test]
fn stats_from_v2_files() {
    let fs = fake();
    let m = V2Manager::new(fs.clone(), Path::new("/cg2"), Path::new("c1"));
    m.create(&Resources::default()).unwrap();
    let dir = Path::new("/cg2/c1");
    fs.seed(
        dir.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nnr_periods 9\nnr_throttled 7\nthrottled_usec 20\n",
    );
    fs.seed(dir.join("memory.current"), "8192\n");
    fs.seed(dir.join("memory.max"), "33554432\n");
    fs.seed(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
    );
    fs.seed(dir.join("pids.current"), "2\n");
    fs.seed(dir.join("pids.max"), "20\n");
    fs.seed(
        dir.join("io.stat"),
        "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
    );
    let s = m.stats().unwrap();
    assert_eq!(
        s,
        Stats {
            cpu_usage_ns: 1_500_000,
            throttled_periods: 7,
            throttled_ns: 20_000,
            memory_usage: 8192,
            memory_limit: Some(32 * MB),
            oom_kills: 1,
            pids_current: 2,
            pids_limit: Some(20),
            blkio_read_bytes: 11,
            blkio_write_bytes: 22,
        }
    );
    assert!(m.oom_killed().unwrap());
}

#[test]
fn device_rules_become_the_cgroups_filter_before_any_process_joins() {
    let fs = fake();
    let m = V2Manager::new(fs.clone(), Path::new("/cg2"), Path::new("berth/c1"));
    m.create(&Resources {
        devices: crate::docker_default(),
        ..Resources::default()
    })
    .unwrap();
    let want = DevicePolicy::from_rules(&crate::docker_default())
        .unwrap()
        .program();
    assert_eq!(fs.device_filter("/cg2/berth/c1"), Some(want));
    assert_eq!(
        fs.device_filter("/cg2/berth"),
        None,
        "the parent keeps none"
    );
    // A second create (a restart) replaces it.
    m.create(&Resources {
        devices: crate::all_devices(),
        ..Resources::default()
    })
    .unwrap();
    let all = DevicePolicy::from_rules(&crate::all_devices()).unwrap();
    assert_eq!(fs.device_filter("/cg2/berth/c1"), Some(all.program()));
    m.destroy().unwrap();
    assert_eq!(fs.device_filter("/cg2/berth/c1"), None);
    // No rules: the parent's apply, and no filter is made.
    let m = V2Manager::new(fs.clone(), Path::new("/cg2"), Path::new("berth/c2"));
    m.create(&Resources::default()).unwrap();
    assert_eq!(fs.device_filter("/cg2/berth/c2"), None);
}

#[test]
fn rules_that_cannot_be_enforced_stop_the_container() {
    let fs = fake();
    fs.refuse_device_filters();
    let m = V2Manager::new(fs.clone(), Path::new("/cg2"), Path::new("c1"));
    let err = m
        .create(&Resources {
            devices: crate::docker_default(),
            ..Resources::default()
        })
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CgroupError::DeviceFilter { .. }), "{err:?}");
    assert!(
        text.contains("/cg2/c1") && text.contains("cannot start"),
        "{text}"
    );
    // --privileged has nothing to enforce, so it still runs.
    m.create(&Resources {
        devices: crate::all_devices(),
        ..Resources::default()
    })
    .unwrap();
}

#[test]
fn a_rule_that_cannot_hold_is_refused_before_anything_is_made() {
    let fs = fake();
    let m = V2Manager::new(fs.clone(), Path::new("/cg2"), Path::new("c1"));
    let mut rules = crate::docker_default();
    rules.push(crate::DeviceRule {
        allow: false,
        kind: crate::DeviceKind::Block,
        major: Some(8),
        minor: Some(0),
        access: "m".into(),
    });
    let err = m
        .create(&Resources {
            devices: rules,
            ..Resources::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("b 8:0 m"), "{err}");
    assert!(!fs.is_dir("/cg2/c1"));
}
