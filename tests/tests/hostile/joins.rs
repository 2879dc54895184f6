//! Joining a running container: `exec`, health checks, `cp` and signals
//! reach the container through the pid its monitor wrote to a file. A pid
//! is recycled when its process dies, and the file is only a file: a pid
//! that now names a host process must never be joined, read through or
//! signalled. And the process `exec` forks into the container must not be
//! open to the container while it is still berth's binary (the
//! CVE-2019-5736 pattern), nor hand the container any of the host's file
//! descriptors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, cgroups_of, import_busybox, inspect};

/// A host process that outlives nothing: killed and reaped on drop.
struct HostProcess(Child);

impl HostProcess {
    fn sleep() -> anyhow::Result<HostProcess> {
        Ok(HostProcess(
            Command::new("sleep")
                .arg("1000")
                .stdin(Stdio::null())
                .spawn()?,
        ))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn container_dir(daemon: &Berthd, name: &str) -> anyhow::Result<PathBuf> {
    inspect(daemon, name)?["dir"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("inspect {name} has no dir"))
}

/// Replace the pid file as the shim does (all at once): a reader never
/// sees it empty.
fn write_pid_file(dir: &Path, pid: &str) -> anyhow::Result<()> {
    let tmp = dir.join("pid.rewritten");
    std::fs::write(&tmp, pid)?;
    std::fs::rename(&tmp, dir.join("pid"))?;
    Ok(())
}

fn run_sleeper(daemon: &Berthd, name: &str) -> anyhow::Result<String> {
    Ok(daemon
        .berth_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            BUSYBOX,
            "sleep",
            "1000",
        ])?
        .trim()
        .to_string())
}

fn output(daemon: &Berthd, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = daemon.berth(args)?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The pid file rewritten to name a host process is exactly what a
/// recycled pid looks like to the daemon. exec, health checks, cp and kill
/// must refuse it — whether the impostor is outside the container's cgroup
/// or was moved into it — and leave the host process alone.
#[test]
fn a_pid_file_naming_a_host_process_is_never_joined_read_or_signalled() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    // Something only the host has.
    let secret_dir = tempfile::tempdir()?;
    let secret = secret_dir.path().join("host-only");
    std::fs::write(&secret, "the host's secret\n")?;
    let secret = secret.to_string_lossy().into_owned();
    // Its health check can only pass on the host.
    let id = daemon
        .berth_ok(&[
            "run",
            "-d",
            "--name",
            "victim",
            "--network",
            "none",
            "--health-cmd",
            &format!("cat {secret}"),
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            BUSYBOX,
            "sleep",
            "1000",
        ])?
        .trim()
        .to_string();
    let dir = container_dir(&daemon, "victim")?;
    let real_pid = std::fs::read_to_string(dir.join("pid"))?;

    let mut impostor = HostProcess::sleep()?;
    write_pid_file(&dir, &impostor.pid().to_string())?;

    let attempts = |stage: &str| -> anyhow::Result<()> {
        let (ok, out, err) = output(&daemon, &["exec", "victim", "cat", &secret])?;
        assert!(
            !ok && !out.contains("secret"),
            "{stage}: exec ran on the host: {out}{err}"
        );
        assert!(
            err.contains("is not the container's") || err.contains("namespace"),
            "{stage}: the refusal says why: {err}"
        );
        let (ok, out, err) = output(&daemon, &["cp", &format!("victim:{secret}"), "-"])?;
        assert!(
            !ok && !out.contains("secret"),
            "{stage}: cp read the host's file: {err}"
        );
        let (ok, out, err) = output(&daemon, &["cp", "victim:/etc/hostname", "-"])?;
        assert!(
            !ok,
            "{stage}: cp read /etc/hostname through a host process: {out}"
        );
        assert!(
            err.contains("is not the container's") || err.contains("namespace"),
            "{stage}: {err}"
        );
        Ok(())
    };
    attempts("impostor outside the cgroup")?;
    let (ok, _, err) = output(&daemon, &["kill", "victim"])?;
    assert!(
        !ok,
        "kill of a container whose pid is a host process: {err}"
    );
    assert!(impostor.alive(), "berth kill killed a host process");

    // Moved into the container's cgroup (as a pid reused by a process
    // the container forked would be): its namespaces are still the host's.
    for cg in cgroups_of(&id) {
        std::fs::write(
            Path::new(&cg).join("cgroup.procs"),
            impostor.pid().to_string(),
        )?;
    }
    attempts("impostor inside the cgroup")?;
    assert!(impostor.alive());
    // The health checks run every 200 ms: a few of them, none on the host.
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let health = inspect(&daemon, "victim")?["State"]["Health"].clone();
        if health["FailingStreak"].as_u64().unwrap_or(0) >= 3 || Instant::now() > deadline {
            break health;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health["Status"], "unhealthy", "{health:#}");
    let log = health["Log"].as_array().cloned().unwrap_or_default();
    assert!(!log.is_empty(), "{health:#}");
    for run in &log {
        let out = run["Output"].as_str().unwrap_or("");
        assert!(
            !out.contains("secret"),
            "a health check ran on the host: {run:#}"
        );
    }

    // The real pid back: everything works again.
    write_pid_file(&dir, &real_pid)?;
    let out = daemon.berth_ok(&["exec", "victim", "cat", "/etc/hostname"])?;
    assert_eq!(out.trim(), &id[..12]);
    let out = daemon.berth_ok(&["cp", "victim:/etc/hostname", "-"])?;
    assert!(out.contains(&id[..12]));
    daemon.berth_ok(&["rm", "-f", "victim"])?;
    Ok(())
}

/// From the moment `exec` joins the container until its command's execve,
/// the process is berth's binary inside the container's PID namespace; a
/// process of the container that can open its `/proc/PID/exe` or fds can
/// overwrite the host's binary or use host descriptors. It must be
/// non-dumpable, so that only CAP_SYS_PTRACE opens those files.
///
/// The exec'd child is caught in that window by freezing the container's
/// cgroup before the exec: the child freezes right after joining it. The
/// observer is root without CAP_SYS_PTRACE, as is berthd here (a process
/// can see another's /proc files only if it holds every capability the
/// other does), so dumpability alone decides.
#[test]
fn the_exec_child_is_non_dumpable_until_it_runs_the_command() -> anyhow::Result<()> {
    // The bounding set is per thread: only this thread and what it
    // starts lose CAP_SYS_PTRACE.
    std::thread::spawn(|| -> anyhow::Result<()> {
        const CAP_SYS_PTRACE: libc::c_ulong = 19;
        // SAFETY: prctl on this thread's own capability bounding set.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) };
        anyhow::ensure!(rc == 0, "dropping CAP_SYS_PTRACE");
        let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
        import_busybox(&daemon)?;
        let id = run_sleeper(&daemon, "frozen")?;
        // The cgroup2 freezer of the container's unified cgroup: berthd's
        // pause (the v1 freezer) is not set, so exec does not refuse.
        let unified = cgroups_of(&id)
            .into_iter()
            .find(|p| p.contains("/unified/"))
            .ok_or_else(|| anyhow::anyhow!("no unified cgroup for {id}"))?;
        let freeze = Path::new(&unified).join("cgroup.freeze");
        let procs_file = Path::new(&unified).join("cgroup.procs");
        // Frozen once its init runs the command, set up to the end.
        let init = std::fs::read_to_string(&procs_file)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(format!("/proc/{}/comm", init.trim()))?.trim() != "sleep" {
            anyhow::ensure!(Instant::now() < deadline, "the container never ran sleep");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::write(&freeze, "1")?;
        let exec = daemon
            .berth_command(&["exec", "frozen", "true"])?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let child = loop {
            let procs = std::fs::read_to_string(&procs_file)?;
            let joined = procs.lines().find(|p| {
                !init.lines().any(|i| i == *p)
                    && std::fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.trim() == "berth-shim")
            });
            if let Some(p) = joined {
                break p.to_string();
            }
            if Instant::now() > deadline {
                std::fs::write(&freeze, "0")?;
                let out = exec.wait_with_output()?;
                anyhow::bail!(
                    "the exec'd child never joined the container's cgroup ({procs}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Caught between joining the container and its execve.
        let exe = Command::new("readlink")
            .arg(format!("/proc/{child}/exe"))
            .output()?;
        // Listing the numbers is allowed; following them is not.
        let fds = Command::new("ls")
            .arg("-l")
            .arg(format!("/proc/{child}/fd/"))
            .output()?;
        std::fs::write(&freeze, "0")?;
        let done = exec.wait_with_output()?;
        assert!(
            !exe.status.success(),
            "a process without CAP_SYS_PTRACE read the exec child's exe: {}",
            String::from_utf8_lossy(&exe.stdout)
        );
        let listed = String::from_utf8_lossy(&fds.stdout);
        assert!(
            !fds.status.success() && !listed.contains(" -> "),
            "a process without CAP_SYS_PTRACE followed the exec child's fds: {listed}"
        );
        assert!(
            done.status.success(),
            "the exec after the thaw: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        // After its execve the command is an ordinary, dumpable process
        // of the container, as under Docker.
        daemon.berth_ok(&["exec", "-d", "frozen", "sleep", "99"])?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let sleeper = loop {
            let procs = std::fs::read_to_string(&procs_file)?;
            let found = procs.lines().find(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x0099\x00")
            });
            if let Some(p) = found {
                break p.to_string();
            }
            anyhow::ensure!(Instant::now() < deadline, "no exec'd sleep 99");
            std::thread::sleep(Duration::from_millis(20));
        };
        let exe = Command::new("readlink")
            .arg(format!("/proc/{sleeper}/exe"))
            .output()?;
        assert!(
            exe.status.success(),
            "the exec'd command stayed non-dumpable: {}",
            String::from_utf8_lossy(&exe.stderr)
        );
        daemon.berth_ok(&["rm", "-f", "frozen"])?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the test thread panicked"))?
}

/// What an exec'd command finds open: its standard streams and nothing
/// of the host's (berthd's sockets, the helper's cgroup files, pipes).
/// Listed from the host, so that no shell or `ls` of the container adds
/// descriptors of its own.
#[test]
fn an_exec_sees_only_its_standard_streams() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    run_sleeper(&daemon, "fds")?;
    for (n, flags) in [
        (771, vec![]),
        (772, vec!["-u", "nobody"]),
        (773, vec!["-t"]),
        (774, vec!["-i"]),
        (775, vec!["-d"]),
    ] {
        let arg = n.to_string();
        let mut args = vec!["exec"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(&["fds", "sleep", &arg]);
        let mut client = daemon
            .berth_command(&args)?
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let want = format!("sleep\0{n}\0").into_bytes();
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid = loop {
            let found = std::fs::read_dir("/proc")?.flatten().find_map(|e| {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                (cmd == want).then(|| e.file_name().to_string_lossy().into_owned())
            });
            if let Some(p) = found {
                break p;
            }
            assert!(Instant::now() < deadline, "no exec'd sleep {n} ({flags:?})");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))?
            .flatten()
            .map(|e| {
                let target = std::fs::read_link(e.path()).unwrap_or_default();
                format!("{} {}", e.file_name().to_string_lossy(), target.display())
            })
            .collect();
        fds.sort();
        let numbers: Vec<&str> = fds.iter().filter_map(|f| f.split(' ').next()).collect();
        assert_eq!(
            numbers,
            ["0", "1", "2"],
            "exec {flags:?} has open: {fds:#?}"
        );
        let _ = client.kill();
        let _ = client.wait();
    }
    daemon.berth_ok(&["rm", "-f", "fds"])?;
    Ok(())
}
