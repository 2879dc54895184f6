//! Real containers through berthd and its shims: output, exit codes,
//! isolation, limits, a daemon killed under running containers, and no
//! leftovers after `rm`.

use std::time::Duration;

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, cgroups_of, import_busybox, mounts_under, processes_with};

fn run(daemon: &Berthd, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let out = daemon.berth(&all)?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn output_exit_codes_and_isolation() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let script = "echo pid=$$; hostname; grep CapEff /proc/self/status; \
                  echo procs=$(ls /proc | grep -c '^[0-9]'); echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); \
                  echo mounts=$(grep -c . /proc/self/mountinfo); exit 3";
    let (code, out, err) = run(
        &daemon,
        &[
            "--rm",
            "--network",
            "none",
            "--hostname",
            "inside",
            BUSYBOX,
            "sh",
            "-c",
            script,
        ],
    )?;
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("inside\n"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    // sh, ls, grep at most: no host process is visible.
    let procs: u32 = out
        .split("procs=")
        .nth(1)
        .and_then(|s| s.lines().next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(999);
    assert!(procs <= 4, "{procs} processes visible:\n{out}");
    assert!(out.contains("kcore=0\n"), "{out}");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .count();
    let mounts: usize = out
        .split("mounts=")
        .nth(1)
        .and_then(|s| s.lines().next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        mounts > 0 && mounts != host_mounts,
        "container sees {mounts} mounts, host has {host_mounts}"
    );

    let (code, _, err) = run(
        &daemon,
        &["--rm", "--network", "none", BUSYBOX, "no-such-command"],
    )?;
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = run(
        &daemon,
        &["--rm", "--network", "none", BUSYBOX, "/etc/passwd"],
    )?;
    assert_eq!(code, 126, "{err}");

    // Capabilities: dropped ones vanish, --privileged has all of them.
    let (_, out, _) = run(
        &daemon,
        &[
            "--rm",
            "--network",
            "none",
            "--cap-drop",
            "NET_RAW",
            BUSYBOX,
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    )?;
    assert!(out.contains("00000000a80405fb"), "{out}"); // CAP_NET_RAW is bit 13
    let (_, out, _) = run(
        &daemon,
        &[
            "--rm",
            "--network",
            "none",
            "--privileged",
            BUSYBOX,
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    )?;
    assert!(!out.contains("a80425fb"), "{out}");

    // Seccomp: the default profile refuses unshare(2) without
    // CAP_SYS_ADMIN, even for a user namespace, which needs no capability,
    // and seccomp=unconfined lifts it (tests/containers_seccomp.rs has more).
    let (code, _, err) = run(
        &daemon,
        &[
            "--rm",
            "--network",
            "none",
            BUSYBOX,
            "unshare",
            "-U",
            "true",
        ],
    )?;
    assert_ne!(
        code, 0,
        "unshare worked under the default seccomp profile: {err}"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
    let (code, _, err) = run(
        &daemon,
        &[
            "--rm",
            "--network",
            "none",
            "--security-opt",
            "seccomp=unconfined",
            BUSYBOX,
            "unshare",
            "-U",
            "true",
        ],
    )?;
    assert_eq!(code, 0, "unshare failed without seccomp: {err}");
    assert!(
        mounts_under(&daemon.root.join("containers")).is_empty(),
        "mounts left after --rm"
    );
    Ok(())
}

#[test]
fn memory_limit_kills_and_reports_oom() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let (code, _, err) = run(
        &daemon,
        &[
            "--name",
            "hog",
            "--network",
            "none",
            "--memory",
            "16m",
            "--memory-swap",
            "16m",
            BUSYBOX,
            "sh",
            "-c",
            "x=aaaaaaaa; while true; do x=$x$x; done",
        ],
    )?;
    assert_eq!(code, 137, "{err}");
    let inspect: serde_json::Value = serde_json::from_str(&daemon.berth_ok(&["inspect", "hog"])?)?;
    assert_eq!(inspect["status"]["oom_killed"], true, "{inspect:#}");
    let id = inspect["id"].as_str().unwrap_or_default().to_string();
    daemon.berth_ok(&["rm", "hog"])?;
    assert!(
        cgroups_of(&id).is_empty(),
        "cgroups left: {:?}",
        cgroups_of(&id)
    );
    Ok(())
}

#[test]
fn containers_outlive_a_killed_daemon_and_leave_nothing_after_rm() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let id = daemon
        .berth_ok(&[
            "run",
            "-d",
            "--name",
            "survivor",
            "--network",
            "none",
            BUSYBOX,
            "sh",
            "-c",
            "sleep 3; echo done; exit 7",
        ])?
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    daemon.kill9();
    daemon.restart()?;
    let ps = daemon.berth_ok(&["ps"])?;
    assert!(
        ps.contains("survivor") && ps.contains("Up"),
        "after the restart:\n{ps}"
    );
    let code = daemon.berth_ok(&["wait", "survivor"])?;
    assert_eq!(code.trim(), "7");
    let logs = daemon.berth_ok(&["logs", "survivor"])?;
    assert_eq!(logs, "done\n");
    daemon.berth_ok(&["rm", "survivor"])?;
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        mounts_under(&daemon.root).iter().all(|m| !m.contains(&id)),
        "{:?}",
        mounts_under(&daemon.root)
    );
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));
    assert!(processes_with(&id).is_empty(), "{:?}", processes_with(&id));
    assert!(!daemon.root.join("containers").join(&id).exists());
    Ok(())
}

#[test]
fn env_file_ulimit_add_host_and_dns() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let dir = tempfile::tempdir()?;
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\n\nOVERRIDDEN=file\n")?;
    let out = daemon.berth_ok(&[
        "run", "--rm", "--network", "none", "--env-file", &env_file.to_string_lossy(), "-e", "OVERRIDDEN=flag",
        "--ulimit", "nofile=1024:2048", "--add-host", "db:10.213.9.9", "--dns", "127.0.0.53", BUSYBOX, "sh", "-c",
        "echo $FROM_FILE $OVERRIDDEN; ulimit -n; ulimit -Hn; grep -w db /etc/hosts; grep nameserver /etc/resolv.conf",
    ])?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "yes flag", "{out}");
    assert_eq!(&lines[1..3], ["1024", "2048"], "{out}");
    assert!(
        lines[3].starts_with("10.213.9.9") && lines[3].ends_with("db"),
        "{out}"
    );
    assert_eq!(lines[4], "nameserver 127.0.0.53", "{out}");
    Ok(())
}

/// `run --rm` answers before its directory's files are deleted, but not
/// before its snapshot is gone: the container's snapshot is a child of the
/// image's, and scripts doing `run --rm IMAGE …; rmi IMAGE; image prune`
/// expect the image's layers free the moment the run returns.
#[test]
fn a_run_rm_container_snapshot_is_gone_when_the_run_returns() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let snapshots =
        || berth_e2e::images::dir_names(&berth_e2e::images::snapshots_dir(&daemon.root));
    import_busybox(&daemon)?;
    let layers = snapshots();
    for round in 0..10 {
        let (code, _, err) = run(&daemon, &["--rm", "--network", "none", BUSYBOX, "true"])?;
        assert_eq!(code, 0, "round {round}: {err}");
        assert_eq!(
            snapshots(),
            layers,
            "round {round}: the container's snapshot outlived run --rm"
        );
    }
    Ok(())
}
