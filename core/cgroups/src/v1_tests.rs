use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::fs::MemoryFs;

const UNLIMITED: &str = "9223372036854771712";
const MB: u64 = 1 << 20;

fn fake(with_memsw: bool) -> Arc<MemoryFs> {
    let fs = Arc::new(MemoryFs::new());
    for name in crate::V1_CONTROLLERS {
        fs.seed_dir(format!("/cg/{name}"));
    }
    fs.seed("/cg/cpuset/cpuset.cpus", "0-1\n");
    fs.seed("/cg/cpuset/cpuset.mems", "0\n");
    for (file, value) in [
        ("cgroup.procs", ""),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "-1"),
        ("cpu.shares", "1024"),
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
        ("memory.limit_in_bytes", UNLIMITED),
        ("memory.soft_limit_in_bytes", UNLIMITED),
        ("pids.max", "max"),
        ("freezer.state", "THAWED"),
    ] {
        fs.template(file, value);
    }
    if with_memsw {
        fs.template("memory.memsw.limit_in_bytes", UNLIMITED);
    }
    fs
}

fn manager(fs: &Arc<MemoryFs>) -> V1Manager {
    let controllers: BTreeMap<String, PathBuf> = crate::V1_CONTROLLERS
        .iter()
        .map(|c| ((*c).to_owned(), PathBuf::from(format!("/cg/{c}"))))
        .collect();
    V1Manager::new(fs.clone(), &controllers, None, Path::new("berth/c1"))
}

#[test]
fn create_writes_docker_semantics() {
    let fs = fake(true);
    let m = manager(&fs);
    m.create(&Resources {
        cpus: Some(1.5),
        cpu_shares: Some(512),
        cpuset_cpus: Some("1".into()),
        memory: Some(Limit::Max(64 * MB)),
        memory_swap: Some(Limit::Max(128 * MB)),
        memory_reservation: Some(Limit::Max(32 * MB)),
        pids_limit: Some(Limit::Max(20)),
        ..Resources::default()
    })
    .unwrap();
    let get = |p: &str| fs.get(p).unwrap();
    assert_eq!(get("/cg/cpu/berth/c1/cpu.cfs_period_us"), "100000");
    assert_eq!(get("/cg/cpu/berth/c1/cpu.cfs_quota_us"), "150000");
    assert_eq!(get("/cg/cpu/berth/c1/cpu.shares"), "512");
    assert_eq!(
        get("/cg/cpuset/berth/cpuset.cpus"),
        "0-1",
        "parent inherits"
    );
    assert_eq!(get("/cg/cpuset/berth/c1/cpuset.cpus"), "1");
    assert_eq!(get("/cg/cpuset/berth/c1/cpuset.mems"), "0");
    assert_eq!(
        get("/cg/memory/berth/c1/memory.limit_in_bytes"),
        (64 * MB).to_string()
    );
    assert_eq!(
        get("/cg/memory/berth/c1/memory.memsw.limit_in_bytes"),
        (128 * MB).to_string()
    );
    assert_eq!(
        get("/cg/memory/berth/c1/memory.soft_limit_in_bytes"),
        (32 * MB).to_string()
    );
    assert_eq!(get("/cg/pids/berth/c1/pids.max"), "20");
    assert_eq!(m.paths().len(), crate::V1_CONTROLLERS.len());
}

#[test]
fn memsw_shrinks_after_memory_and_grows_before() {
    let fs = fake(true);
    let m = manager(&fs);
    m.create(&Resources::default()).unwrap();
    let mem = Path::new("/cg/memory/berth/c1/memory.limit_in_bytes");
    let memsw = Path::new("/cg/memory/berth/c1/memory.memsw.limit_in_bytes");
    let order = |fs: &MemoryFs| -> Vec<PathBuf> {
        fs.writes()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p == mem || p == memsw)
            .collect()
    };
    // From unlimited to a limit: the total shrinks, memory goes first.
    m.apply(&Resources {
        memory: Some(Limit::Max(64 * MB)),
        memory_swap: Some(Limit::Max(64 * MB)),
        ..Resources::default()
    })
    .unwrap();
    assert_eq!(order(&fs), [mem, memsw]);
    // Raising both: the total goes first or the kernel refuses memory.
    m.apply(&Resources {
        memory: Some(Limit::Max(256 * MB)),
        memory_swap: Some(Limit::Max(512 * MB)),
        ..Resources::default()
    })
    .unwrap();
    assert_eq!(order(&fs)[2..], [memsw, mem]);
}

#[test]
fn missing_swap_accounting_fails_only_when_asked() {
    let fs = fake(false);
    let m = manager(&fs);
    let limited = Resources {
        memory: Some(Limit::Max(64 * MB)),
        memory_swap: Some(Limit::Max(128 * MB)),
        ..Resources::default()
    };
    let err = m.create(&limited).unwrap_err();
    assert!(err.to_string().contains("swapaccount=1"), "{err}");
    m.apply(&Resources {
        memory: Some(Limit::Max(64 * MB)),
        memory_swap: Some(Limit::Unlimited),
        ..Resources::default()
    })
    .unwrap();
}

#[test]
fn blkio_weight_without_cfq_or_bfq_is_a_clear_error() {
    let fs = fake(true);
    let m = manager(&fs);
    m.create(&Resources::default()).unwrap();
    let err = m
        .apply(&Resources {
            blkio_weight: Some(500),
            ..Resources::default()
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("not supported by this kernel"),
        "{err}"
    );
    fs.seed("/cg/blkio/berth/c1/blkio.bfq.weight", "100");
    m.apply(&Resources {
        blkio_weight: Some(500),
        ..Resources::default()
    })
    .unwrap();
    assert_eq!(
        fs.get("/cg/blkio/berth/c1/blkio.bfq.weight").unwrap(),
        "500"
    );
}

#[test]
fn invalid_update_writes_nothing() {
    let fs = fake(true);
    let m = manager(&fs);
    m.create(&Resources::default()).unwrap();
    let before = fs.writes().len();
    assert!(
        m.apply(&Resources {
            cpus: Some(0.5),
            memory: Some(Limit::Max(MB)),
            ..Resources::default()
        })
        .is_err()
    );
    assert_eq!(fs.writes().len(), before);
}

#[test]
fn stats_and_destroy() {
    let fs = fake(true);
    let m = manager(&fs);
    m.create(&Resources::default()).unwrap();
    fs.seed("/cg/cpuacct/berth/c1/cpuacct.usage", "123456789\n");
    fs.seed(
        "/cg/cpu/berth/c1/cpu.stat",
        "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
    );
    fs.seed("/cg/memory/berth/c1/memory.usage_in_bytes", "4096\n");
    fs.seed(
        "/cg/memory/berth/c1/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    );
    fs.seed("/cg/pids/berth/c1/pids.current", "3\n");
    fs.seed(
        "/cg/blkio/berth/c1/blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 100\n8:0 Write 200\n8:16 Read 1\nTotal 301\n",
    );
    let s = m.stats().unwrap();
    assert_eq!(s.cpu_usage_ns, 123_456_789);
    assert_eq!((s.throttled_periods, s.throttled_ns), (4, 5000));
    assert_eq!(
        (s.memory_usage, s.memory_limit, s.oom_kills),
        (4096, None, 1)
    );
    assert_eq!((s.pids_current, s.pids_limit), (3, None));
    assert_eq!((s.blkio_read_bytes, s.blkio_write_bytes), (101, 200));
    assert!(m.oom_killed().unwrap());
    m.destroy().unwrap();
    assert!(!fs.is_dir("/cg/memory/berth/c1"));
    assert!(fs.is_dir("/cg/memory/berth"), "parents are kept");
    m.destroy().unwrap();
}

#[test]
fn hybrid_attaches_the_device_filter_on_top_of_the_v1_rules() {
    let fs = fake(true);
    fs.template("devices.allow", "");
    fs.template("devices.deny", "");
    fs.seed_dir("/u");
    fs.template("cgroup.kill", "");
    let controllers: BTreeMap<String, PathBuf> = crate::V1_CONTROLLERS
        .iter()
        .map(|c| ((*c).to_owned(), PathBuf::from(format!("/cg/{c}"))))
        .collect();
    let m = V1Manager::new(
        fs.clone(),
        &controllers,
        Some(Path::new("/u")),
        Path::new("c1"),
    );
    let devices = crate::docker_default();
    m.create(&Resources {
        devices: devices.clone(),
        ..Resources::default()
    })
    .unwrap();
    assert_eq!(fs.get("/cg/devices/c1/devices.deny").unwrap(), "a");
    let want = crate::DevicePolicy::from_rules(&devices).unwrap().program();
    assert_eq!(fs.device_filter("/u/c1"), Some(want));
    m.destroy().unwrap();
    assert_eq!(fs.device_filter("/u/c1"), None);

    // Where the filter cannot be attached, the v1 rules still hold.
    fs.refuse_device_filters();
    m.create(&Resources {
        devices,
        ..Resources::default()
    })
    .unwrap();
    assert_eq!(fs.get("/cg/devices/c1/devices.deny").unwrap(), "a");
    assert_eq!(fs.device_filter("/u/c1"), None);
}
