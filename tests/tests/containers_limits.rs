//! Resource limits and lifecycle verbs on real containers: pids limit,
//! CPU throttling, pause/unpause, `stop -t`, read-only bind mounts.

use std::time::{Duration, Instant};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

fn stats(daemon: &Berthd, name: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&daemon.berth_ok(&[
        "stats",
        "--no-stream",
        name,
    ])?)?)
}

#[test]
fn pids_cpus_pause_stop_and_ro_binds() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;

    // A bounded fork bomb under --pids-limit 10: forks fail inside, the
    // container holds exactly its limit, the host is fine.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "bomb",
        "--network",
        "none",
        "--pids-limit",
        "10",
        BUSYBOX,
        "sh",
        "-c",
        // busybox sh exits when a fork fails: the bomb runs in a subshell and
        // PID 1 then becomes a plain sleep (exec forks nothing).
        "(for i in $(seq 40); do sleep 30 & done) 2>/dev/null; exec sleep 30",
    ])?;
    std::thread::sleep(Duration::from_millis(1000));
    let s = stats(&daemon, "bomb")?;
    assert_eq!(s["pids_limit"].as_u64(), Some(10), "{s:#}");
    let current = s["pids_current"].as_u64().unwrap_or(999);
    assert!(
        (2..=10).contains(&current),
        "{current} processes under --pids-limit 10: {s:#}"
    );
    assert!(
        std::process::Command::new("true").status()?.success(),
        "the host can still fork"
    );
    daemon.berth_ok(&["rm", "-f", "bomb"])?;

    // --cpus 0.2 on a busy loop: throttled periods rise.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "spin",
        "--network",
        "none",
        "--cpus",
        "0.2",
        BUSYBOX,
        "sh",
        "-c",
        "while :; do :; done",
    ])?;
    std::thread::sleep(Duration::from_millis(1500));
    let s = stats(&daemon, "spin")?;
    assert!(s["throttled_periods"].as_u64().unwrap_or(0) > 0, "{s:#}");
    daemon.berth_ok(&["rm", "-f", "spin"])?;

    // pause freezes a counter, unpause resumes it.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i >> /tmp/n; done",
    ])?;
    std::thread::sleep(Duration::from_millis(300));
    daemon.berth_ok(&["pause", "counter"])?;
    let root_of = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        let v: serde_json::Value = serde_json::from_str(&daemon.berth_ok(&["inspect", name])?)?;
        Ok(std::path::PathBuf::from(v["dir"].as_str().unwrap_or_default()).join("rootfs"))
    };
    let n_file = root_of("counter")?.join("tmp/n");
    // The counter appends, so the file's size only grows while it runs
    // (rewriting it would show an empty file between truncate and write).
    let read = || std::fs::metadata(&n_file).map(|m| m.len()).unwrap_or(0);
    let a = read();
    assert!(a > 0, "the counter never ran");
    std::thread::sleep(Duration::from_millis(500));
    let b = read();
    assert_eq!(a, b, "the counter moved while paused");
    daemon.berth_ok(&["unpause", "counter"])?;
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(read(), b, "the counter did not resume");
    daemon.berth_ok(&["rm", "-f", "counter"])?;

    // stop -t 2 on PID 1 that ignores SIGTERM: SIGKILL after about 2 s.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    let t0 = Instant::now();
    daemon.berth_ok(&["stop", "-t", "2", "stubborn"])?;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "stop took {took:?}"
    );
    assert_eq!(daemon.berth_ok(&["wait", "stubborn"])?.trim(), "137");
    daemon.berth_ok(&["rm", "stubborn"])?;

    // A bind mount marked :ro is read-only inside; a rw one is writable.
    let host = tempfile::tempdir()?;
    std::fs::write(host.path().join("data"), "from the host\n")?;
    let ro = format!("{}:/data:ro", host.path().display());
    let out = daemon.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &ro,
        BUSYBOX,
        "sh",
        "-c",
        "cat /data/data; echo x > /data/new",
    ])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the host\n");
    assert!(
        !out.status.success(),
        "writing to a :ro bind mount succeeded"
    );
    assert!(!host.path().join("new").exists());
    let rw = format!("{}:/data", host.path().display());
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &rw,
        BUSYBOX,
        "sh",
        "-c",
        "echo x > /data/new",
    ])?;
    assert!(host.path().join("new").exists());
    Ok(())
}
