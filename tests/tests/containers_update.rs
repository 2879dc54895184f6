#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! `berth update` on a running container: the cgroup's limits change
//! live (read from the cgroup files), `inspect` shows them, they survive
//! a daemon restart, and bad values change nothing.

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, cgroups_of, import_busybox};

/// The first of `files` found in the container's cgroup directories.
fn cgroup_value(id: &str, files: &[&str]) -> String {
    for dir in cgroups_of(id) {
        for f in files {
            if let Ok(v) = std::fs::read_to_string(std::path::Path::new(&dir).join(f)) {
                return v.trim().to_string();
            }
        }
    }
    panic!("none of {files:?} in {:?}", cgroups_of(id));
}

fn memory_limit(id: &str) -> String {
    cgroup_value(id, &["memory.limit_in_bytes", "memory.max"])
}

#[test]
fn update_changes_limits_live_and_records_them() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let id = daemon
        .berth_ok(&[
            "run",
            "-d",
            "--name",
            "up",
            "--network",
            "none",
            "--memory",
            "64m",
            BUSYBOX,
            "sleep",
            "300",
        ])?
        .trim()
        .to_string();
    assert_eq!(memory_limit(&id), (64u64 << 20).to_string());

    let out = daemon.berth_ok(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "up",
    ])?;
    assert_eq!(out.trim(), "up");
    assert_eq!(memory_limit(&id), (96u64 << 20).to_string());
    assert_eq!(cgroup_value(&id, &["pids.max"]), "50");
    let quota = cgroup_value(&id, &["cpu.cfs_quota_us", "cpu.max"]);
    assert!(quota.starts_with("50000"), "cpu quota {quota}");
    // The container keeps running under its new limits.
    let (code, _, _) = {
        let o = daemon.berth(&["exec", "up", "true"])?;
        (o.status.code(), (), ())
    };
    assert_eq!(code, Some(0));

    let v: serde_json::Value = serde_json::from_str(&daemon.berth_ok(&["inspect", "up"])?)?;
    assert_eq!(v["resources"]["memory"], 96 << 20, "{v:#}");
    assert_eq!(v["resources"]["pids_limit"], 50, "{v:#}");
    assert_eq!(v["resources"]["cpus"], 0.5, "{v:#}");

    // Refused values change nothing, and say why.
    let out = daemon.berth(&["update", "--memory", "1m", "up"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--memory") && err.contains("6MiB"), "{err}");
    assert_eq!(memory_limit(&id), (96u64 << 20).to_string());
    let out = daemon.berth(&["update", "--memory", "64m", "no-such-container"])?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("no container"));

    // The record survives a daemon restart.
    daemon.kill9();
    daemon.restart()?;
    let v: serde_json::Value = serde_json::from_str(&daemon.berth_ok(&["inspect", "up"])?)?;
    assert_eq!(v["resources"]["memory"], 96 << 20, "{v:#}");
    daemon.berth_ok(&["update", "--memory", "-1", "up"])?;
    let unlimited = memory_limit(&id);
    assert!(
        unlimited == "max" || unlimited.parse::<u64>().unwrap() > 1 << 40,
        "{unlimited}"
    );
    daemon.berth_ok(&["rm", "-f", "up"])?;
    Ok(())
}
