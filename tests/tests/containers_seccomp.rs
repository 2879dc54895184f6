//! Docker's default seccomp profile on real containers through berthd:
//! what it refuses, what `--cap-add` opens, what `seccomp=unconfined`
//! lifts, that ordinary programs do not notice it, that `exec` gets it
//! too, and that `inspect` shows it.

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox, inspect};

/// `berth run --rm --network none [opts] busybox sh -c script`.
fn sh(daemon: &Berthd, opts: &[&str], script: &str) -> anyhow::Result<(i32, String, String)> {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[BUSYBOX, "sh", "-c", script]);
    let out = daemon.berth(&args)?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `script` must fail on EPERM (busybox's mount says "are you root?").
fn refused(daemon: &Berthd, opts: &[&str], script: &str) -> anyhow::Result<()> {
    let (code, out, err) = sh(daemon, opts, script)?;
    assert_ne!(code, 0, "{script} with {opts:?} worked: {out}");
    assert!(
        err.contains("Operation not permitted") || err.contains("are you root"),
        "{script} with {opts:?}: {err}"
    );
    Ok(())
}

fn works(daemon: &Berthd, opts: &[&str], script: &str) -> anyhow::Result<String> {
    let (code, out, err) = sh(daemon, opts, script)?;
    assert_eq!(code, 0, "{script} with {opts:?}: {out}{err}");
    Ok(out)
}

#[test]
fn default_profile_refuses_what_docker_refuses_and_follows_cap_add() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;

    // Ordinary programs: a shell, a fork, a pipe, files, the clock,
    // sleep, a socket and connect, signals, setarch's personality calls.
    let out = works(
        &daemon,
        &[],
        "grep Seccomp: /proc/self/status; ls / >/dev/null && (echo forked) | cat \
         && date +%s >/dev/null && sleep 0.1 && echo x >/tmp/f && cat /tmp/f \
         && linux32 true && (wget -q -T 2 -O- http://127.0.0.1:9/ 2>&1; true) \
         | grep -vc 'not permitted' && kill -0 $$ && echo done",
    )?;
    assert!(out.starts_with("Seccomp:\t2\nforked\nx\n1\n"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");

    // Refused with EPERM. unshare -U and a second swapon need no
    // capability the container lacks: only the profile stops them.
    let none: &[&str] = &[];
    refused(&daemon, none, "unshare -U true")?;
    refused(&daemon, none, "mount -t tmpfs none /tmp")?;
    refused(&daemon, none, "swapon /bin/busybox")?;
    refused(&daemon, none, "reboot -f")?;

    // --cap-add SYS_ADMIN grants the capability and opens its calls.
    let admin = &["--cap-add", "SYS_ADMIN"];
    let out = works(
        &daemon,
        admin,
        "mount -t tmpfs none /tmp && touch /tmp/x && grep -c ' /tmp tmpfs' /proc/self/mounts \
         && umount /tmp && unshare -U -u true && echo ok",
    )?;
    assert_eq!(out, "1\nok\n");
    // Not what no capability opens: the kernel would answer EINVAL here.
    refused(&daemon, admin, "swapon /bin/busybox")?;

    // seccomp=unconfined lifts the profile, capabilities stay.
    let unconfined = &["--security-opt", "seccomp=unconfined"];
    let out = works(
        &daemon,
        unconfined,
        "grep Seccomp: /proc/self/status; unshare -U true && echo ok",
    )?;
    assert_eq!(out, "Seccomp:\t0\nok\n");
    refused(&daemon, unconfined, "mount -t tmpfs none /tmp")?;
    Ok(())
}

#[test]
fn exec_gets_the_profile_and_inspect_shows_it() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "admin",
        "--network",
        "none",
        "--cap-add",
        "SYS_ADMIN",
        BUSYBOX,
        "sleep",
        "60",
    ])?;

    let exec = |name: &str, script: &str| -> anyhow::Result<(i32, String)> {
        let out = daemon.berth(&["exec", name, "sh", "-c", script])?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let (code, err) = exec("plain", "unshare -U true")?;
    assert!(
        code != 0 && err.contains("Operation not permitted"),
        "{code} {err}"
    );
    let (code, err) = exec("admin", "unshare -U true")?;
    assert_eq!(code, 0, "{err}");

    // The bundle's spec holds the profile made for the container's caps.
    let allowed = |name: &str| -> anyhow::Result<Vec<String>> {
        let v = inspect(&daemon, name)?;
        let seccomp = &v["spec"]["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO", "{seccomp:#}");
        assert_eq!(seccomp["defaultErrnoRet"], 1, "{seccomp:#}");
        Ok(seccomp["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["action"] == "SCMP_ACT_ALLOW" && s["args"].is_null())
            .flat_map(|s| s["names"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect())
    };
    let plain = allowed("plain")?;
    assert!(plain.iter().any(|n| n == "read"), "{plain:?}");
    assert!(!plain.iter().any(|n| n == "mount"), "{plain:?}");
    let admin = allowed("admin")?;
    assert!(admin.iter().any(|n| n == "mount"), "{admin:?}");

    daemon.berth_ok(&["rm", "-f", "plain", "admin"])?;
    Ok(())
}
