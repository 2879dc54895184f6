//! Resource limits enforced for real, as root, on this host's cgroups.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on any error")]

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

use berth_cgroups::{Limit, Resources, Signal};
use common::{cgroup, dir_of, spawn_in, wait_for};

const MB: u64 = 1 << 20;

#[test]
fn memory_limit_oom_kills_a_hog_and_reports_it() {
    let cg = cgroup(
        "oom",
        &Resources {
            memory: Some(Limit::Max(32 * MB)),
            ..Resources::default()
        },
    );
    assert_eq!(cg.stats().unwrap().memory_limit, Some(32 * MB));
    assert!(!cg.oom_killed().unwrap());
    // The string doubles until it no longer fits in 32 MiB.
    let mut hog = spawn_in(&*cg, "x=0123456789abcdef; while :; do x=$x$x; done");
    let status = wait_for(&mut hog, Duration::from_secs(60)).expect("hog still running");
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(cg.oom_killed().unwrap());
    let stats = cg.stats().unwrap();
    assert!(stats.oom_kills >= 1, "{stats:?}");
}

#[test]
fn pids_limit_stops_a_fork_bomb_and_the_host_is_fine() {
    let cg = cgroup(
        "pids",
        &Resources {
            pids_limit: Some(Limit::Max(20)),
            ..Resources::default()
        },
    );
    // A bounded bomb: 100 background sleeps, of which at most 19 fit
    // next to the shell. Each is forked from a subshell, whose failure
    // the shell survives; the end is marked with a builtin (no fork).
    let marker = std::env::temp_dir().join(common::name("pids-done"));
    let mut bomb = spawn_in(
        &*cg,
        &format!(
            "i=0; while [ $i -lt 100 ]; do (sleep 60 &) 2>/dev/null; i=$((i+1)); done; \
             echo done > {}; exec sleep 60",
            marker.display()
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(&marker).unwrap();
    let refused: u64 = std::fs::read_to_string(dir_of(&*cg, "/pids/").join("pids.events"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let stats = cg.stats().unwrap();
    let procs = cg.procs().unwrap();
    eprintln!(
        "pids: {stats:?}, {} procs, {refused} forks refused",
        procs.len()
    );
    assert_eq!(stats.pids_limit, Some(20));
    assert!(stats.pids_current <= 20, "{stats:?}");
    assert!((2..=20).contains(&procs.len()), "{procs:?}");
    assert!(refused >= 80, "only {refused} forks refused");
    cg.kill_all(Signal::SIGKILL).unwrap();
    wait_for(&mut bomb, Duration::from_secs(10)).expect("bomb survived kill_all");
    // The host still forks.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn cpus_quota_throttles_a_busy_loop() {
    let cg = cgroup(
        "cpus",
        &Resources {
            cpus: Some(0.2),
            ..Resources::default()
        },
    );
    let mut busy = spawn_in(&*cg, "while :; do :; done");
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let stats = cg.stats().unwrap();
    let wall = start.elapsed().as_nanos() as f64;
    let share = stats.cpu_usage_ns as f64 / wall;
    eprintln!("cpus 0.2: {share:.3} of wall, {stats:?}");
    assert!(stats.throttled_periods > 0, "{stats:?}");
    assert!(stats.throttled_ns > 0, "{stats:?}");
    // Upper bound is the quota plus one period of slack; the lower bound
    // is loose because two shared cores may be busy with other work.
    assert!(share < 0.3 && share > 0.05, "share {share}");
    cg.kill_all(Signal::SIGKILL).unwrap();
    busy.wait().unwrap();
}

#[test]
fn live_update_changes_limits() {
    let cg = cgroup(
        "update",
        &Resources {
            memory: Some(Limit::Max(64 * MB)),
            pids_limit: Some(Limit::Max(50)),
            ..Resources::default()
        },
    );
    let mut sleeper = spawn_in(&*cg, "sleep 60");
    cg.apply(&Resources {
        memory: Some(Limit::Max(128 * MB)),
        memory_reservation: Some(Limit::Max(64 * MB)),
        pids_limit: Some(Limit::Unlimited),
        cpus: Some(1.5),
        cpu_shares: Some(512),
        ..Resources::default()
    })
    .unwrap();
    let stats = cg.stats().unwrap();
    assert_eq!(stats.memory_limit, Some(128 * MB));
    assert_eq!(stats.pids_limit, None);
    let cpu = dir_of(&*cg, "/cpu/");
    let read = |f: &str| {
        std::fs::read_to_string(cpu.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("cpu.cfs_quota_us"), "150000");
    assert_eq!(read("cpu.shares"), "512");
    // A bad update is refused before anything is written.
    assert!(
        cg.apply(&Resources {
            memory: Some(Limit::Max(256 * MB)),
            cpu_shares: Some(1),
            ..Resources::default()
        })
        .is_err()
    );
    assert_eq!(cg.stats().unwrap().memory_limit, Some(128 * MB));
    // Memory plus swap, raised then lowered: the kernel keeps memsw at or
    // above memory at every write, so the order of writes matters.
    let memory = dir_of(&*cg, "/memory/");
    let memsw = memory.join("memory.memsw.limit_in_bytes");
    let read_bytes = |p: &std::path::Path| -> u64 {
        std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
    };
    for (mem, total) in [(256, 512), (96, 96), (200, 300)] {
        cg.apply(&Resources {
            memory: Some(Limit::Max(mem * MB)),
            memory_swap: Some(Limit::Max(total * MB)),
            ..Resources::default()
        })
        .unwrap();
        assert_eq!(cg.stats().unwrap().memory_limit, Some(mem * MB));
        assert_eq!(read_bytes(&memsw), total * MB);
    }
    cg.apply(&Resources {
        cpuset_cpus: Some("0".into()),
        ..Resources::default()
    })
    .unwrap();
    let cpuset = dir_of(&*cg, "/cpuset/").join("cpuset.cpus");
    assert_eq!(std::fs::read_to_string(cpuset).unwrap().trim(), "0");
    // Asking for a weight this kernel cannot give says so.
    let blkio = cg.apply(&Resources {
        blkio_weight: Some(300),
        ..Resources::default()
    });
    let weight_file = dir_of(&*cg, "/blkio/").join("blkio.weight").exists()
        || dir_of(&*cg, "/blkio/").join("blkio.bfq.weight").exists();
    match blkio {
        Ok(()) => assert!(weight_file),
        Err(e) => {
            assert!(!weight_file);
            assert!(
                e.to_string().contains("not supported by this kernel"),
                "{e}"
            );
        }
    }
    cg.kill_all(Signal::SIGKILL).unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn stats_count_block_io() {
    let cg = cgroup("blkio", &Resources::default());
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    // Since Linux 6.x, blk-throttle counts I/O only on a device with a
    // throttle rule in the cgroup (v1 has no other per-cgroup counters):
    // set one far above any real rate on the device under the target dir.
    let device = block_device_of(target);
    std::fs::write(
        dir_of(&*cg, "/blkio/").join("blkio.throttle.write_bps_device"),
        format!("{device} {}", 1u64 << 40),
    )
    .unwrap();
    let file = target.join(common::name("dd"));
    let mut dd = spawn_in(
        &*cg,
        &format!(
            "dd if=/dev/zero of={} bs=1M count=8 oflag=direct 2>/dev/null",
            file.display()
        ),
    );
    let status = wait_for(&mut dd, Duration::from_secs(60)).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(status.success());
    let stats = cg.stats().unwrap();
    eprintln!("{stats:?}");
    assert!(stats.blkio_write_bytes >= 8 * MB, "{stats:?}");
    assert!(stats.cpu_usage_ns > 0);
}

/// `major:minor` of the whole disk holding `path`.
fn block_device_of(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt as _;
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    // A partition's parent disk is one level up in sysfs.
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).unwrap();
    if sys.join("partition").exists() {
        let parent = sys.parent().unwrap().join("dev");
        return std::fs::read_to_string(parent).unwrap().trim().to_owned();
    }
    format!("{major}:{minor}")
}
