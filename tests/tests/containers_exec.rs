#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! `berth exec` in real containers through berthd: namespaces, cgroup,
//! user, environment, working directory, stdin, exit codes.

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

fn exec(daemon: &Berthd, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let out = daemon.berth(&all).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_runs_inside_the_container() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let id = daemon
        .berth_ok(&[
            "run",
            "-d",
            "--name",
            "target",
            "--network",
            "none",
            "--hostname",
            "inside",
            "-e",
            "FROM_RUN=yes",
            BUSYBOX,
            "sh",
            "-c",
            "echo marker > /tmp/mark; exec sleep 300",
        ])?
        .trim()
        .to_string();

    // The container's shell writes its marker after `run -d` returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while exec(&daemon, &["target", "test", "-e", "/tmp/mark"]).0 != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no /tmp/mark in the container"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // Hostname, files, environment, PID namespace.
    let (code, out, err) = exec(
        &daemon,
        &[
            "target",
            "sh",
            "-c",
            "hostname; cat /tmp/mark; echo run=$FROM_RUN; echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' '); ls /proc | grep -c '^[0-9]'; echo me=$$",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "inside", "{out}");
    assert_eq!(lines[1], "marker", "{out}");
    assert_eq!(lines[2], "run=yes", "{out}");
    assert!(lines[3].starts_with("pid1=sleep 300"), "{out}");
    let procs: u32 = lines[4].trim().parse().unwrap();
    assert!(
        procs <= 5,
        "{procs} processes visible: the host's leak in\n{out}"
    );
    let me: u32 = lines[5].trim_start_matches("me=").parse().unwrap();
    assert!(
        me > 1 && me < 100,
        "exec'd shell has pid {me}: not in the container's pid ns"
    );

    // -e, -u, -w.
    let (code, out, err) = exec(
        &daemon,
        &[
            "-e",
            "EXTRA=1",
            "-e",
            "FROM_RUN=over",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "target",
            "sh",
            "-c",
            "echo $EXTRA $FROM_RUN; id -u; id -g; pwd",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1 over\n65534\n65534\n/tmp\n");

    // Capabilities and seccomp are the container's.
    let (_, out, _) = exec(
        &daemon,
        &[
            "target",
            "grep",
            "-E",
            "CapEff|Seccomp:|NoNewPrivs",
            "/proc/self/status",
        ],
    );
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");

    // stdout and stderr stay apart.
    let (code, out, err) = exec(
        &daemon,
        &["target", "sh", "-c", "echo to-out; echo to-err >&2"],
    );
    assert_eq!((code, out.as_str()), (0, "to-out\n"));
    assert!(err.contains("to-err"), "{err}");

    // The exec'd process is in the container's cgroup (seen from the host).
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["inspect", "target"])?)?;
    let pid1 = inspect["status"]["pid"].to_string();
    let host_cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", pid1.trim()))?;
    let mut sleeper = daemon
        .berth_command(&["exec", "target", "sleep", "30"])?
        .stdin(std::process::Stdio::null())
        .spawn()?;
    let mut found = None;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        for e in std::fs::read_dir("/proc")?.flatten() {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if cmd == b"sleep\x0030\x00" {
                found = Some(e.file_name().to_string_lossy().into_owned());
            }
        }
        if found.is_some() {
            break;
        }
    }
    let pid = found.expect("the exec'd sleep is not visible from the host");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    assert!(
        cg.contains(&format!("berth/{id}")),
        "exec'd process cgroups:\n{cg}"
    );
    assert_eq!(cg, host_cgroup, "exec'd process and container init differ");
    let ns = |p: &str, n: &str| std::fs::read_link(format!("/proc/{p}/ns/{n}")).unwrap();
    for n in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        assert_eq!(ns(&pid, n), ns(pid1.trim(), n), "{n} namespace differs");
    }
    // Only the command joins: berth's exec helper is not counted against the
    // container's limits (its cgroup holds the init and the sleep).
    for dir in berth_e2e::containers::cgroups_of(&id) {
        let procs = std::fs::read_to_string(std::path::Path::new(&dir).join("cgroup.procs"))?;
        let mut procs: Vec<&str> = procs.lines().collect();
        procs.sort_unstable();
        let mut want = vec![pid1.trim(), pid.as_str()];
        want.sort_unstable();
        assert_eq!(procs, want, "{dir}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    // Exit codes.
    assert_eq!(exec(&daemon, &["target", "sh", "-c", "exit 3"]).0, 3);
    let (code, _, err) = exec(&daemon, &["target", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("not found"), "{err}");
    let (code, _, err) = exec(&daemon, &["target", "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    let (code, _, err) = exec(&daemon, &["-w", "/no/such/dir", "target", "true"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("/no/such/dir"), "{err}");
    let (code, _, err) = exec(&daemon, &["-w", "tmp", "target", "true"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("not absolute"), "{err}");
    let (code, _, err) = exec(&daemon, &["-u", "ghost", "target", "true"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("unable to find user ghost"), "{err}");

    // stdin with -i.
    let out = daemon.berth_stdin_ok(
        &["exec", "-i", "target", "sh", "-c", "tr a-z A-Z; echo done"],
        "hello\n",
    )?;
    assert_eq!(out, "HELLO\ndone\n");

    // -d returns at once; the process runs on.
    daemon.berth_ok(&[
        "exec",
        "-d",
        "target",
        "sh",
        "-c",
        "sleep 1; touch /tmp/detached",
    ])?;
    let mut seen = false;
    for _ in 0..60 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if exec(&daemon, &["target", "test", "-e", "/tmp/detached"]).0 == 0 {
            seen = true;
            break;
        }
    }
    assert!(seen, "exec -d never ran its command");

    // -t: a terminal from the container's devpts, TERM, a size; -i -t: a shell on it.
    let (code, out, err) = exec(
        &daemon,
        &[
            "-t",
            "target",
            "sh",
            "-c",
            "tty; echo $TERM; stty size; exit 4",
        ],
    );
    assert_eq!(code, 4, "{err}");
    assert_eq!(out, "/dev/pts/0\r\nxterm\r\n24 80\r\n");
    let mut child = daemon
        .berth_command(&["exec", "-i", "-t", "target", "sh"])?
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"echo $((6 * 7)) from the terminal\nexit 5\n",
    )?;
    let o = child.wait_with_output()?;
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("42 from the terminal"),
        "{o:?}"
    );

    // A paused container refuses (the command would hang frozen).
    daemon.berth_ok(&["pause", "target"])?;
    let (code, _, err) = exec(&daemon, &["target", "true"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is paused"), "{err}");
    daemon.berth_ok(&["unpause", "target"])?;
    assert_eq!(exec(&daemon, &["target", "true"]).0, 0);

    // A stopped container refuses with a clear error.
    daemon.berth_ok(&["stop", "-t", "0", "target"])?;
    let (code, _, err) = exec(&daemon, &["target", "true"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not running"), "{err}");
    let (code, _, err) = exec(&daemon, &["no-such-container", "true"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no container"), "{err}");
    daemon.berth_ok(&["rm", "-f", "target"])?;
    Ok(())
}
