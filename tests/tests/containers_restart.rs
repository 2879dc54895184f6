//! Restart policies through berthd and its shims: `on-failure:N` restarts
//! exactly N times, `always` restarts until the user stops it, restarts go
//! on while berthd is down, `always` containers come back when berthd
//! starts after their shim and process died (a reboot), `restart -t`.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::time::Duration;

use berth_e2e::Berthd;
use berth_e2e::containers::{
    BUSYBOX, cgroups_of, import_busybox, inspect, logs, mounts_under, pid_file, processes_with,
    state_of,
};
use berth_e2e::net::wait_until;

fn restart_count(daemon: &Berthd, name: &str) -> u64 {
    inspect(daemon, name).unwrap()["restart_count"]
        .as_u64()
        .unwrap()
}

fn assert_gone(daemon: &Berthd, id: &str) {
    assert!(
        mounts_under(&daemon.root.join("containers").join(id)).is_empty(),
        "mounts left"
    );
    assert!(
        cgroups_of(id).is_empty(),
        "cgroups left: {:?}",
        cgroups_of(id)
    );
    assert!(processes_with(id).is_empty(), "{:?}", processes_with(id));
    assert!(!daemon.root.join("containers").join(id).exists());
}

#[test]
fn on_failure_restarts_exactly_n_times_and_always_until_stopped() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;

    // on-failure:2 on a failing command: three runs, then its exit code.
    let id = daemon
        .berth_ok(&[
            "run",
            "-d",
            "--name",
            "fails",
            "--network",
            "none",
            "--restart",
            "on-failure:2",
            BUSYBOX,
            "sh",
            "-c",
            "echo run; exit 3",
        ])?
        .trim()
        .to_string();
    assert_eq!(daemon.berth_ok(&["wait", "fails"])?.trim(), "3");
    let v = inspect(&daemon, "fails")?;
    assert_eq!(v["restart_count"], 2, "{v}");
    assert_eq!(v["restart_policy"], "on-failure:2", "{v}");
    assert_eq!(v["status"]["state"], "exited", "{v}");
    assert_eq!(v["status"]["code"], 3, "{v}");
    let (out, _) = logs(&daemon, &["fails"])?;
    assert_eq!(out, "run\nrun\nrun\n");
    // A success is not a failure: no restart.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "succeeds",
        "--network",
        "none",
        "--restart",
        "on-failure",
        BUSYBOX,
        "true",
    ])?;
    assert_eq!(daemon.berth_ok(&["wait", "succeeds"])?.trim(), "0");
    assert_eq!(restart_count(&daemon, "succeeds"), 0);

    // always: restarts after the process exits, and `ps` shows the
    // back-off as Restarting.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "loops",
        "--network",
        "none",
        "--restart",
        "always",
        BUSYBOX,
        "sh",
        "-c",
        "echo up; exit 1",
    ])?;
    wait_until(
        "4 restarts of an always container",
        Duration::from_secs(30),
        || Ok(restart_count(&daemon, "loops") >= 4),
    )?;
    wait_until("ps to show Restarting", Duration::from_secs(30), || {
        Ok(daemon.berth_ok(&["ps"])?.contains("Restarting (1)"))
    })?;
    // A manual stop disables the policy: it stays stopped.
    daemon.berth_ok(&["stop", "-t", "1", "loops"])?;
    let count = restart_count(&daemon, "loops");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state_of(&daemon, "loops")?, "exited");
    assert_eq!(
        restart_count(&daemon, "loops"),
        count,
        "restarted after stop"
    );
    assert!(!daemon.berth_ok(&["ps"])?.contains("loops"));
    // ...until the next start.
    daemon.berth_ok(&["start", "loops"])?;
    wait_until("a restart after start", Duration::from_secs(30), || {
        Ok(restart_count(&daemon, "loops") >= 1)
    })?;

    // kill by the user does not trigger a restart either.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "killed",
        "--network",
        "none",
        "--restart",
        "always",
        BUSYBOX,
        "sleep",
        "1000",
    ])?;
    daemon.berth_ok(&["kill", "killed"])?;
    assert_eq!(daemon.berth_ok(&["wait", "killed"])?.trim(), "137");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state_of(&daemon, "killed")?, "exited");
    assert_eq!(restart_count(&daemon, "killed"), 0);

    // Another signal is not a stop: the policy still restarts what it ends.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "hup",
        "--network",
        "none",
        "--restart",
        "always",
        BUSYBOX,
        "sh",
        "-c",
        "trap 'exit 5' HUP; while true; do sleep 0.1; done",
    ])?;
    daemon.berth_ok(&["kill", "-s", "HUP", "hup"])?;
    wait_until("a restart after SIGHUP", Duration::from_secs(30), || {
        Ok(restart_count(&daemon, "hup") == 1)
    })?;

    for name in ["fails", "succeeds", "loops", "killed", "hup"] {
        let id = inspect(&daemon, name)?["id"].as_str().unwrap().to_string();
        daemon.berth_ok(&["rm", "-f", name])?;
        assert_gone(&daemon, &id);
    }
    let _ = id;
    Ok(())
}

#[test]
fn restarts_go_on_without_berthd_and_always_comes_back_after_a_reboot() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    // On the bridge: every run (restarts included) has its address.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "always",
        BUSYBOX,
        "sh",
        "-c",
        "ip -4 addr show eth0 | grep -q inet && echo wired; sleep 0.5; exit 1",
    ])?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "server",
        "--restart",
        "always",
        BUSYBOX,
        "sh",
        "-c",
        "ip -4 addr show eth0 | grep -q inet && echo wired; exec sleep 1000",
    ])?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "parked",
        "--network",
        "none",
        "--restart",
        "unless-stopped",
        BUSYBOX,
        "sleep",
        "1000",
    ])?;
    daemon.berth_ok(&["stop", "-t", "0", "parked"])?;
    wait_until("flaky to restart once", Duration::from_secs(30), || {
        Ok(restart_count(&daemon, "flaky") >= 1)
    })?;

    // The shims restart on their own while berthd is down.
    let before = restart_count(&daemon, "flaky");
    daemon.kill9();
    let flaky_dir = daemon.root.join("containers");
    let count_without_daemon = || -> u32 {
        std::fs::read_dir(&flaky_dir)
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("restart.json")).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| v["count"].as_u64().unwrap_or(0) as u32)
            .max()
            .unwrap_or(0)
    };
    wait_until(
        "a restart while berthd is down",
        Duration::from_secs(30),
        || Ok(u64::from(count_without_daemon()) > before),
    )?;
    daemon.restart()?;
    // Every run, those without berthd included, had its network.
    wait_until("three wired runs of flaky", Duration::from_secs(30), || {
        Ok(logs(&daemon, &["flaky"])?.0.matches("wired").count() >= 3)
    })?;
    let (out, _) = logs(&daemon, &["flaky"])?;
    assert!(out.lines().all(|l| l == "wired"), "{out}");

    // A reboot, simulated: berthd, the shims and the containers all die.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "1000",
    ])?;
    let plain = [
        pid_file(&daemon, "plain", "shim.pid")?,
        pid_file(&daemon, "plain", "pid")?,
    ];
    let shim = pid_file(&daemon, "server", "shim.pid")?;
    let pid = pid_file(&daemon, "server", "pid")?;
    daemon.kill9();
    for p in [shim, pid].into_iter().chain(plain) {
        // SAFETY: kill(2) with pids we read; no memory is involved.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    wait_until("the container to die", Duration::from_secs(10), || {
        Ok(!std::path::Path::new(&format!("/proc/{pid}")).exists())
    })?;
    daemon.restart()?;
    wait_until("server to come back", Duration::from_secs(30), || {
        Ok(state_of(&daemon, "server")? == "running")
    })?;
    assert_ne!(pid_file(&daemon, "server", "pid")?, pid);
    wait_until(
        "server's second run to log",
        Duration::from_secs(10),
        || Ok(logs(&daemon, &["server"])?.0 == "wired\nwired\n"),
    )?;
    // unless-stopped, stopped by the user, stays stopped across it, and
    // without a policy a container stays dead (its stale cgroup goes with rm).
    assert_eq!(state_of(&daemon, "parked")?, "exited");
    let v = inspect(&daemon, "plain")?;
    assert_eq!(v["status"]["state"], "exited", "{v}");
    assert_eq!(v["status"]["code"], 137, "{v}");

    for name in ["flaky", "server", "parked", "plain"] {
        let id = inspect(&daemon, name)?["id"].as_str().unwrap().to_string();
        daemon.berth_ok(&["rm", "-f", name])?;
        assert_gone(&daemon, &id);
    }
    Ok(())
}

#[test]
fn restart_verb_stops_then_starts_and_bad_policies_are_refused() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    // PID 1 ignores SIGTERM without a handler: -t 1 ends in SIGKILL.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "echo start; exec sleep 1000",
    ])?;
    let first = pid_file(&daemon, "svc", "pid")?;
    daemon.berth_ok(&["restart", "-t", "1", "svc"])?;
    assert_eq!(state_of(&daemon, "svc")?, "running");
    assert_ne!(pid_file(&daemon, "svc", "pid")?, first);
    wait_until("the second run's output", Duration::from_secs(10), || {
        Ok(logs(&daemon, &["svc"])?.0 == "start\nstart\n")
    })?;
    // restart of an exited container starts it; create + start works too.
    daemon.berth_ok(&["stop", "-t", "0", "svc"])?;
    daemon.berth_ok(&["restart", "svc"])?;
    assert_eq!(state_of(&daemon, "svc")?, "running");
    daemon.berth_ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "none",
        BUSYBOX,
        "echo",
        "hi",
    ])?;
    assert_eq!(state_of(&daemon, "later")?, "created");
    daemon.berth_ok(&["start", "later"])?;
    assert_eq!(daemon.berth_ok(&["wait", "later"])?.trim(), "0");
    assert_eq!(logs(&daemon, &["later"])?.0, "hi\n");

    for (args, expect) in [
        (
            vec!["--restart", "sometimes"],
            "invalid restart policy \"sometimes\"",
        ),
        (
            vec!["--restart", "on-failure:x"],
            "on-failure[:max-retries]",
        ),
        (vec!["--restart", "always", "--rm"], "--restart and --rm"),
    ] {
        let mut all = vec!["run", "-d", "--network", "none"];
        all.extend(args);
        all.extend([BUSYBOX, "true"]);
        let out = daemon.berth(&all)?;
        assert_eq!(out.status.code(), Some(125));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
    }
    daemon.berth_ok(&["rm", "-f", "svc", "later"])?;
    Ok(())
}
