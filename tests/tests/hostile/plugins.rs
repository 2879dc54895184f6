//! Hostile plugins and the operations hooks must see. A hook that sleeps in
//! WASI or blocks opening a FIFO in its granted directory must answer by its
//! deadline (denied when it fails closed, allowed when it fails open) while
//! the daemon serves everyone else, trip the breaker, and leave no root file
//! system behind; so must a run whose client goes away during a slow hook. A
//! plugin's answer is cut to a sane size. `exec`, `cp` and `update` fire
//! hooks, with every security setting in the events, so `exec -u 0` and an
//! `update` that lifts a limit can be refused; and a hook built against the
//! 0.1.0 contract still loads and judges.

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox, mounts_under};
use berth_e2e::http::Request;
use berth_plugin_artifacts as wasm;

/// Runs `berth ARGS…` and waits at most `limit` for it (then kills it, so a
/// daemon that never answers fails the test instead of hanging it).
fn berth_within(
    daemon: &Berthd,
    args: &[&str],
    limit: Duration,
) -> anyhow::Result<(Output, Duration)> {
    let child = daemon
        .berth_command(args)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok((out?, start.elapsed())),
        Err(_) => {
            kill(pid);
            anyhow::bail!("berth {args:?} did not answer within {limit:?}")
        }
    }
}

fn kill(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) on a pid this test spawned; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn install(daemon: &Berthd, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["plugin", "install"];
    all.extend_from_slice(args);
    daemon.berth_ok(&all).map(|_| ())
}

/// A `run` as an unprivileged user, so only the hook under test decides.
const RUN: [&str; 8] = [
    "run",
    "--rm",
    "--network",
    "none",
    "-u",
    "65534",
    BUSYBOX,
    "true",
];

/// `n` runs at once, each given `limit`; their outputs and durations.
fn runs_at_once(
    daemon: &Berthd,
    n: usize,
    limit: Duration,
) -> Vec<anyhow::Result<(Output, Duration)>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| berth_within(daemon, &RUN, limit)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a run panicked")))
            })
            .collect()
    })
}

/// `berth ps` and the registry's `GET /v2/` answer, each within a second.
fn daemon_serves(daemon: &Berthd) -> anyhow::Result<()> {
    let (ps, took) = berth_within(daemon, &["ps"], Duration::from_secs(10))?;
    anyhow::ensure!(ps.status.success(), "berth ps failed: {}", stderr(&ps));
    anyhow::ensure!(took < Duration::from_secs(2), "berth ps took {took:?}");
    let start = Instant::now();
    let v2 = Request::get("/v2/")
        .timeout(Duration::from_secs(10))
        .send(daemon.addr)?;
    anyhow::ensure!(v2.status == 200, "GET /v2/ answered {}", v2.status);
    anyhow::ensure!(
        start.elapsed() < Duration::from_secs(2),
        "GET /v2/ took {:?}",
        start.elapsed()
    );
    Ok(())
}

/// The snapshots on disk (the image's layers, and one per container).
fn snapshots(daemon: &Berthd) -> usize {
    std::fs::read_dir(daemon.root.join("snapshots/snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// No container, root file system mount, container directory or container
/// snapshot is left: only the `layers` snapshots of the image.
fn nothing_left(daemon: &Berthd, layers: usize) -> anyhow::Result<()> {
    let left = snapshots(daemon);
    anyhow::ensure!(
        left == layers,
        "{left} snapshots where the image has {layers}"
    );
    let containers = daemon.root.join("containers");
    let mounts = mounts_under(&containers);
    anyhow::ensure!(mounts.is_empty(), "mounts left: {mounts:?}");
    let dirs: Vec<_> = std::fs::read_dir(&containers)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    anyhow::ensure!(dirs.is_empty(), "container directories left: {dirs:?}");
    let ps = daemon.berth_ok(&["ps", "-a", "-q"])?;
    anyhow::ensure!(ps.trim().is_empty(), "containers left: {ps}");
    Ok(())
}

fn plugin_info(daemon: &Berthd, name: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(
        &daemon.berth_ok(&["plugin", "inspect", name])?,
    )?)
}

/// Every run failed by `by`, with `needle` in its error.
fn all_failed(
    results: Vec<anyhow::Result<(Output, Duration)>>,
    by: Duration,
    needle: &str,
) -> anyhow::Result<()> {
    for r in results {
        let (out, took) = r?;
        anyhow::ensure!(!out.status.success(), "a run went through");
        let err = stderr(&out);
        anyhow::ensure!(err.contains(needle), "{needle:?} not in: {err}");
        anyhow::ensure!(took < by, "denied after {took:?}, later than {by:?}");
    }
    Ok(())
}

#[test]
fn a_hook_sleeping_in_wasi_answers_by_its_deadline_closed_and_open() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let layers = snapshots(&daemon);
    install(
        &daemon,
        &[
            wasm::FIXTURE_SLEEP,
            "--name",
            "sleep",
            "--timeout-ms",
            "3000",
        ],
    )?;
    // Eight runs at once, each stuck in the hook until its deadline; the
    // daemon answers others meanwhile.
    let (results, served) = std::thread::scope(|s| {
        let runs = s.spawn(|| runs_at_once(&daemon, 8, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(1000));
        let served = daemon_serves(&daemon);
        (runs.join(), served)
    });
    served?;
    let results = results.map_err(|_| anyhow::anyhow!("the runs panicked"))?;
    all_failed(results, Duration::from_secs(15), "sleep")?;
    nothing_left(&daemon, layers)?;
    // Eight timeouts in a row tripped the breaker: the next run is refused
    // at once (well before the 3 s deadline), without calling the plugin.
    let info = plugin_info(&daemon, "sleep")?;
    assert!(info["metrics"]["timeouts"].as_u64() >= Some(5), "{info}");
    assert!(info["state"].get("cut-off").is_some(), "{info}");
    let (out, took) = berth_within(&daemon, &RUN, Duration::from_secs(30))?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cut off"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(3), "refused after {took:?}");

    // Failing open, the same hook lets the run go on at its deadline.
    daemon.berth_ok(&["plugin", "rm", "sleep"])?;
    install(
        &daemon,
        &[
            wasm::FIXTURE_SLEEP,
            "--name",
            "sleep-open",
            "--timeout-ms",
            "300",
            "--on-failure",
            "open",
        ],
    )?;
    let (out, took) = berth_within(&daemon, &RUN, Duration::from_secs(30))?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    nothing_left(&daemon, layers)?;
    Ok(())
}

/// A FIFO nobody writes to, in a directory of its own.
fn fifo_dir() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fifo"))
        .status()?;
    anyhow::ensure!(status.success(), "mkfifo failed");
    Ok(dir)
}

/// Opens the FIFO for writing and closes it: readers blocked on it return.
/// Non-blocking, so that with no reader left it fails instead of waiting.
fn release(fifo: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo);
}

#[test]
fn a_hook_blocked_on_a_fifo_answers_by_its_deadline_and_is_counted_stuck() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let layers = snapshots(&daemon);
    let dir = fifo_dir()?;
    let grant = format!("{}:/data:ro", dir.path().display());
    install(
        &daemon,
        &[
            wasm::FIXTURE_FIFO,
            "--name",
            "fifo",
            "--timeout-ms",
            "3000",
            "--grant-dir",
            &grant,
        ],
    )?;
    let (results, served) = std::thread::scope(|s| {
        let runs = s.spawn(|| runs_at_once(&daemon, 8, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(1000));
        let served = daemon_serves(&daemon);
        (runs.join(), served)
    });
    let results = results.map_err(|_| anyhow::anyhow!("the runs panicked"));
    if served.is_err() || results.is_err() {
        release(&dir.path().join("fifo"));
    }
    served?;
    all_failed(results?, Duration::from_secs(15), "timed out")?;
    nothing_left(&daemon, layers)?;
    // Each of those calls still holds a thread in the open(2) of the FIFO:
    // counted, and the plugin is refused without being called.
    let info = plugin_info(&daemon, "fifo")?;
    assert!(info["stuck_calls"].as_u64() >= Some(4), "{info}");
    let (out, took) = berth_within(&daemon, &RUN, Duration::from_secs(30))?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cut off") || err.contains("blocked past their deadline"),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "refused after {took:?}");
    // Once the FIFO has a writer the stuck calls end, and are no longer counted.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        release(&dir.path().join("fifo"));
        let stuck = plugin_info(&daemon, "fifo")?["stuck_calls"].as_u64();
        if stuck == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "still stuck: {stuck:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Failing open, a run goes on at the deadline.
    daemon.berth_ok(&["plugin", "rm", "fifo"])?;
    let dir = fifo_dir()?;
    let grant = format!("{}:/data:ro", dir.path().display());
    install(
        &daemon,
        &[
            wasm::FIXTURE_FIFO,
            "--name",
            "fifo-open",
            "--timeout-ms",
            "300",
            "--on-failure",
            "open",
            "--grant-dir",
            &grant,
        ],
    )?;
    let ran = berth_within(&daemon, &RUN, Duration::from_secs(30));
    release(&dir.path().join("fifo"));
    let (out, took) = ran?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    nothing_left(&daemon, layers)?;
    Ok(())
}

/// `berth ps` on the control socket, and an anonymous registry request the
/// auth plugin answers at once, each within two seconds.
fn daemon_serves_anonymous(daemon: &Berthd) -> anyhow::Result<()> {
    let (ps, took) = berth_within(daemon, &["ps"], Duration::from_secs(10))?;
    anyhow::ensure!(ps.status.success(), "berth ps failed: {}", stderr(&ps));
    anyhow::ensure!(took < Duration::from_secs(2), "berth ps took {took:?}");
    let start = Instant::now();
    let tags = Request::get("/v2/fast/y/tags/list")
        .timeout(Duration::from_secs(10))
        .send(daemon.addr)?;
    anyhow::ensure!(
        tags.status == 404,
        "GET /v2/fast/y/tags/list answered {} {}",
        tags.status,
        tags.text()
    );
    anyhow::ensure!(
        start.elapsed() < Duration::from_secs(2),
        "GET /v2/fast/y/tags/list took {:?}",
        start.elapsed()
    );
    Ok(())
}

#[test]
fn an_auth_plugin_slow_on_anonymous_requests_never_stalls_the_daemon() -> anyhow::Result<()> {
    // Whether an anonymous client may pull from slow/* makes the plugin
    // sleep until its deadline; anything else it answers at once.
    let config = format!(
        r#"[registry]
auth = "basic"
[[plugin]]
name = "auth-sleep"
kind = "auth-provider"
source = "{wasm}"
timeout_ms = 4000
"#,
        wasm = wasm::FIXTURE_AUTH_SLEEP
    );
    let daemon = Berthd::start(&config)?;
    let blob = b"a blob that only slow/x holds".to_vec();
    let digest = berth_e2e::sha256_digest(&blob);
    let pushed = Request::post(&format!("/v2/slow/x/blobs/uploads/?digest={digest}"))
        .basic_auth("dev", "dev-pw")
        .header("Content-Type", "application/octet-stream")
        .body(blob)
        .send(daemon.addr)?;
    assert_eq!(pushed.status, 201, "{}", pushed.text());
    // More anonymous requests at once than berthd has async workers: pulls
    // from slow/x, and mounts without `from` that look for a source there.
    let requests: Vec<(Request, u16)> = (0..8)
        .map(|i| {
            if i % 4 == 3 {
                let mount = format!("/v2/fast/y/blobs/uploads/?mount={digest}");
                (Request::post(&mount).content_length(0), 202)
            } else {
                (Request::get(&format!("/v2/slow/x/blobs/{digest}")), 401)
            }
        })
        .collect();
    let (answers, served) = std::thread::scope(|s| {
        let slow: Vec<_> = requests
            .iter()
            .map(|(req, _)| {
                s.spawn(|| {
                    let start = Instant::now();
                    req.clone()
                        .timeout(Duration::from_secs(60))
                        .send(daemon.addr)
                        .map(|r| (r, start.elapsed()))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1000));
        let served = daemon_serves_anonymous(&daemon);
        let answers: Vec<_> = slow
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a request panicked")))
            })
            .collect();
        (answers, served)
    });
    served?;
    // Each slow request is answered at the plugin's deadline, failing
    // closed: no pull, and a mount that found no source it may use.
    for (answer, (_, status)) in answers.into_iter().zip(&requests) {
        let (r, took) = answer?;
        assert_eq!(r.status, *status, "{}", r.text());
        assert!(took < Duration::from_secs(15), "answered after {took:?}");
    }
    let info: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["plugin", "inspect", "auth-sleep"])?)?;
    assert!(info["metrics"]["timeouts"].as_u64() >= Some(5), "{info}");
    Ok(())
}

#[test]
fn a_slow_plugin_is_refused_beyond_its_calls_in_flight_while_others_answer() -> anyhow::Result<()> {
    // Every anonymous pull from slow/* holds an auth-sleep call (and an
    // instance of the pool every plugin shares) until its deadline.
    let config = format!(
        r#"[registry]
auth = "basic"
[[plugin]]
name = "auth-sleep"
kind = "auth-provider"
source = "{wasm}"
timeout_ms = 10000
"#,
        wasm = wasm::FIXTURE_AUTH_SLEEP
    );
    let daemon = Berthd::start(&config)?;
    import_busybox(&daemon)?;
    install(&daemon, &[wasm::FIXTURE_ECHO, "--name", "echo"])?;
    // More at once than a plugin may have in flight (32).
    const SLOW: usize = 44;
    let (answers, other) = std::thread::scope(|s| {
        let slow: Vec<_> = (0..SLOW)
            .map(|_| {
                s.spawn(|| {
                    let start = Instant::now();
                    Request::get("/v2/slow/x/tags/list")
                        .timeout(Duration::from_secs(60))
                        .send(daemon.addr)
                        .map(|r| (r, start.elapsed()))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2000));
        // Meanwhile another plugin answers, and the daemon serves.
        let other = (|| -> anyhow::Result<()> {
            let (run, took) = berth_within(&daemon, &RUN, Duration::from_secs(20))?;
            anyhow::ensure!(!run.status.success(), "the echo hook let a run through");
            anyhow::ensure!(
                stderr(&run).contains("echo pre-create"),
                "the echo hook did not answer: {}",
                stderr(&run)
            );
            anyhow::ensure!(took < Duration::from_secs(5), "the echo hook took {took:?}");
            let (ps, took) = berth_within(&daemon, &["ps"], Duration::from_secs(10))?;
            anyhow::ensure!(ps.status.success(), "berth ps failed: {}", stderr(&ps));
            anyhow::ensure!(took < Duration::from_secs(2), "berth ps took {took:?}");
            Ok(())
        })();
        let answers: Vec<_> = slow
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a request panicked")))
            })
            .collect();
        (answers, other)
    });
    other?;
    // Every pull is refused (fail closed); those beyond the limit at once,
    // without waiting for the plugin's deadline.
    let mut refused_at_once = 0;
    for answer in answers {
        let (r, took) = answer?;
        assert_eq!(r.status, 401, "{}", r.text());
        if took < Duration::from_secs(5) {
            refused_at_once += 1;
        }
    }
    assert!(
        refused_at_once >= SLOW - 32,
        "{refused_at_once} of {SLOW} calls were refused before the deadline"
    );
    let log = daemon.log();
    assert!(
        log.contains("plugin auth-sleep already has") && log.contains("calls running"),
        "the refusal names the plugin: {log}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["plugin", "inspect", "auth-sleep"])?)?;
    assert!(
        info["metrics"]["cut_offs"].as_u64() >= Some((SLOW - 32) as u64),
        "{info}"
    );
    Ok(())
}

#[test]
fn a_client_gone_during_a_slow_pre_create_hook_leaves_nothing_behind() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let layers = snapshots(&daemon);
    install(
        &daemon,
        &[
            wasm::FIXTURE_SLEEP,
            "--name",
            "slow",
            "--timeout-ms",
            "3000",
        ],
    )?;
    let child = daemon
        .berth_command(&RUN)?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // The root file system is mounted while the hook runs; then the client
    // goes away.
    let containers = daemon.root.join("containers");
    let start = Instant::now();
    while mounts_under(&containers).is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !mounts_under(&containers).is_empty(),
        "the run never mounted its root file system"
    );
    kill(child.id());
    let mut child = child;
    let _ = child.wait();
    // The hook's deadline passes; the creation undoes itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    while nothing_left(&daemon, layers).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    nothing_left(&daemon, layers)?;
    Ok(())
}

#[test]
fn a_48_mib_deny_reason_arrives_cut() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let layers = snapshots(&daemon);
    install(
        &daemon,
        &[
            wasm::FIXTURE_BIG_DENY,
            "--name",
            "big",
            "--memory-mib",
            "256",
            "--timeout-ms",
            "5000",
        ],
    )?;
    let (out, _) = berth_within(&daemon, &RUN, Duration::from_secs(60))?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.len() < 16 * 1024, "the error is {} bytes", err.len());
    assert!(
        err.contains("big") && err.contains("cut by berth"),
        "{}",
        &err[..err.len().min(500)]
    );
    let log = daemon.log();
    assert!(log.len() < 4 << 20, "berthd's log is {} bytes", log.len());
    nothing_left(&daemon, layers)?;
    Ok(())
}

/// A detached container running as nobody, named `name`.
fn sleeper(daemon: &Berthd, name: &str, extra: &[&str]) -> anyhow::Result<()> {
    let mut args = vec![
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        "-u",
        "65534",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[BUSYBOX, "sleep", "60"]);
    daemon.berth_ok(&args).map(|_| ())
}

#[test]
fn deny_root_refuses_exec_as_root() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    install(&daemon, &[wasm::DENY_ROOT])?;
    sleeper(&daemon, "app", &[])?;
    for user in ["0", "root", "0:0"] {
        let out = daemon.berth(&["exec", "-u", user, "app", "id", "-u"])?;
        assert!(
            !out.status.success(),
            "exec -u {user} ran: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = stderr(&out);
        assert!(err.contains("deny-root") && err.contains("root"), "{err}");
    }
    // As the container's own user, or another non-root one, it runs.
    assert_eq!(
        daemon.berth_ok(&["exec", "app", "id", "-u"])?.trim(),
        "65534"
    );
    assert_eq!(
        daemon
            .berth_ok(&["exec", "-u", "nobody", "app", "id", "-u"])?
            .trim(),
        "65534"
    );
    // A container labelled for root may have root commands.
    sleeper(&daemon, "ok", &["-l", "berth.policy/allow-root=true"])?;
    assert_eq!(
        daemon
            .berth_ok(&["exec", "-u", "0", "ok", "id", "-u"])?
            .trim(),
        "0"
    );
    daemon.berth_ok(&["rm", "-f", "app", "ok"])?;
    Ok(())
}

/// Policies honour opt-out labels from whoever runs a container, never
/// from the image they judge: an image built with `LABEL
/// berth.policy/allow-root=true` would otherwise exempt itself.
#[test]
fn an_image_cannot_label_itself_out_of_deny_root() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    berth_e2e::containers::import_busybox_as(
        &daemon,
        "e2e/self-exempt:1",
        &["LABEL berth.policy/allow-root=true"],
    )?;
    let inspect = daemon.berth_ok(&["image", "inspect", "e2e/self-exempt:1"])?;
    assert!(inspect.contains("berth.policy/allow-root"), "{inspect}");
    install(&daemon, &[wasm::DENY_ROOT])?;
    let out = daemon.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "e2e/self-exempt:1",
        "id",
        "-u",
    ])?;
    assert!(
        !out.status.success(),
        "the image's own label let it run as root: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(&out);
    assert!(err.contains("deny-root"), "{err}");
    // The same label given by the user still opts out.
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-l",
        "berth.policy/allow-root=true",
        "e2e/self-exempt:1",
        "id",
        "-u",
    ])?;
    assert_eq!(out.trim(), "0");
    Ok(())
}

#[test]
fn default_limits_refuses_an_update_that_lifts_its_memory_limit() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    install(
        &daemon,
        &[
            wasm::DEFAULT_LIMITS,
            "--config",
            r#"{"memory": "96m", "pids": 77}"#,
        ],
    )?;
    sleeper(&daemon, "limited", &[])?;
    let out = daemon.berth(&["update", "--memory", "-1", "limited"])?;
    assert!(!out.status.success(), "the memory limit was lifted");
    let err = stderr(&out);
    assert!(
        err.contains("default-limits") && err.contains("memory"),
        "{err}"
    );
    let out = daemon.berth(&["update", "--pids-limit", "0", "limited"])?;
    assert!(!out.status.success(), "the pids limit was lifted");
    let inspect = daemon.berth_ok(&["inspect", "limited"])?;
    assert!(inspect.contains(&(96u64 << 20).to_string()), "{inspect}");
    // Changing a limit is not lifting it.
    daemon.berth_ok(&["update", "--memory", "128m", "limited"])?;
    let inspect = daemon.berth_ok(&["inspect", "limited"])?;
    assert!(inspect.contains(&(128u64 << 20).to_string()), "{inspect}");
    daemon.berth_ok(&["rm", "-f", "limited"])?;
    Ok(())
}

#[test]
fn exec_cp_update_and_create_show_hooks_every_security_setting() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    sleeper(&daemon, "app", &[])?;
    install(&daemon, &[wasm::FIXTURE_ECHO, "--name", "echo"])?;
    let denied = |args: &[&str]| -> anyhow::Result<String> {
        let out = daemon.berth(args)?;
        anyhow::ensure!(!out.status.success(), "berth {args:?} went through");
        Ok(stderr(&out))
    };
    let err = denied(&["exec", "-u", "0", "app", "id"])?;
    assert!(
        err.contains("echo pre-exec container=app user=\"0\" uid=0 gid=0 command=id"),
        "{err}"
    );
    let err = denied(&["exec", "app", "id"])?;
    assert!(err.contains("uid=65534"), "{err}");
    let host = tempfile::tempdir()?;
    let file = host.path().join("f");
    std::fs::write(&file, "x")?;
    let err = denied(&["cp", &file.to_string_lossy(), "app:/tmp/"])?;
    assert!(
        err.contains("echo pre-copy into container=app path=/tmp") && err.contains("running=true"),
        "{err}"
    );
    let out = host.path().join("out");
    let err = denied(&["cp", "app:/etc/passwd", &out.to_string_lossy()])?;
    assert!(
        err.contains("echo pre-copy out-of container=app path=/etc/passwd"),
        "{err}"
    );
    assert!(!out.exists(), "the copy out happened");
    let err = denied(&["update", "--memory", "64m", "app"])?;
    assert!(
        err.contains("echo pre-update container=app memory=None->Some(67108864)"),
        "{err}"
    );
    let bind = tempfile::tempdir()?;
    let volume = format!("{}:/host:ro", bind.path().display());
    let err = denied(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--tmpfs",
        "/run",
        "-v",
        &volume,
        "--memory-swap",
        "128m",
        "--cpuset-cpus",
        "0",
        "-p",
        "127.0.0.1:0:80",
        BUSYBOX,
        "true",
    ])?;
    for field in [
        "privileged=false",
        "cap-add=NET_ADMIN",
        "cap-drop=ALL",
        "no-new-privileges=true",
        "seccomp-unconfined=true",
        "read-only=true",
        "publish=127.0.0.1:0:80",
        "tmpfs::/run",
        &format!("bind:{}:/host:ro", bind.path().display()),
        "memory-swap=Some(134217728)",
        "cpuset=Some(\"0\")",
    ] {
        assert!(err.contains(field), "{field} not in: {err}");
    }
    daemon.berth_ok(&["plugin", "rm", "echo"])?;
    daemon.berth_ok(&["rm", "-f", "app"])?;
    Ok(())
}

#[test]
fn a_hook_built_against_the_0_1_0_contract_still_loads_and_judges() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    install(&daemon, &[wasm::FIXTURE_OLD_HOOK, "--name", "old"])?;
    let info = plugin_info(&daemon, "old")?;
    assert_eq!(info["first_edition"], true, "{info}");
    assert_eq!(
        info["subscriptions"],
        serde_json::json!(["pre-create"]),
        "{info}"
    );
    let out = daemon.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/tmp:/host:ro",
        BUSYBOX,
        "true",
    ])?;
    assert!(!out.status.success(), "root ran past the old hook");
    let err = stderr(&out);
    // It sees the mounts in the 0.1.0 text form.
    assert!(
        err.contains("fixture-old-hook refuses it") && err.contains("/tmp:/host:ro"),
        "{err}"
    );
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "65534",
        BUSYBOX,
        "true",
    ])?;
    // It never sees the newer events: exec as root goes to the others only.
    sleeper(&daemon, "app", &[])?;
    daemon.berth_ok(&["exec", "-u", "0", "app", "true"])?;
    daemon.berth_ok(&["rm", "-f", "app"])?;
    Ok(())
}

/// An image whose `/etc` belongs to uid 1000 (so its container, running as
/// 1000, can replace `/etc/passwd`), with `bob` at uid 1000, `/etc/p0` and
/// `/etc/p1000` naming bob uid 0 and 1000, and `/flip`, which swaps them in
/// by rename (a reader never sees a partial file) until `/etc/stop` exists.
fn import_flipper(daemon: &Berthd, name: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    const ROOT: &str = "root:x:0:0:root:/root:/bin/sh\n";
    berth_e2e::containers::import_busybox_with(daemon, name, &[], |root| {
        let etc = root.join("etc");
        std::fs::write(etc.join("p0"), format!("{ROOT}bob:x:0:0::/:/bin/sh\n"))?;
        std::fs::write(
            etc.join("p1000"),
            format!("{ROOT}bob:x:1000:1000::/:/bin/sh\n"),
        )?;
        std::fs::copy(etc.join("p1000"), etc.join("passwd"))?;
        std::fs::write(
            root.join("flip"),
            "#!/bin/sh\n\
             while [ ! -e /etc/stop ]; do\n\
             cp /etc/p0 /etc/.next && mv /etc/.next /etc/passwd\n\
             cp /etc/p1000 /etc/.next && mv /etc/.next /etc/passwd\n\
             done\n\
             exec sleep 1000\n",
        )?;
        std::fs::set_permissions(root.join("flip"), std::fs::Permissions::from_mode(0o755))?;
        for entry in std::fs::read_dir(&etc)? {
            std::os::unix::fs::lchown(entry?.path(), Some(1000), Some(1000))?;
        }
        std::os::unix::fs::chown(&etc, Some(1000), Some(1000))?;
        Ok(())
    })
}

/// `exec -u NAME` judged as one uid must run as that uid. The container
/// (uid 1000, owning its `/etc`) flips `bob` between uid 1000 and 0 as fast
/// as it can while `exec -u bob` runs again and again under `deny-root`: a
/// name resolved once for the hook and again for the command would be
/// allowed as 1000 and run as root. Each exec is denied (bob was 0 when
/// judged) or runs as 1000, never as 0; without a hook, the uid and gid the
/// command gets come from one reading of the file.
#[test]
fn exec_as_a_name_the_container_flips_to_root_never_runs_as_root() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_flipper(&daemon, "e2e/flipper:1")?;
    install(&daemon, &[wasm::DENY_ROOT])?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "flip",
        "-u",
        "1000",
        "e2e/flipper:1",
        "/flip",
    ])?;
    let (mut denied, mut as_bob) = (0, 0);
    for i in 0..150 {
        let out = daemon.berth(&["exec", "-u", "bob", "flip", "id", "-u"])?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let err = stderr(&out);
        assert_ne!(
            stdout, "0",
            "exec {i}: `exec -u bob` passed deny-root and ran as root ({err})"
        );
        if out.status.success() {
            assert_eq!(stdout, "1000", "exec {i}: {err}");
            as_bob += 1;
        } else {
            assert!(
                err.contains("deny-root") && err.contains("bob"),
                "exec {i} failed otherwise: {err}"
            );
            denied += 1;
        }
    }
    // Both states were seen at judging time: the race was really run.
    assert!(denied > 0 && as_bob > 0, "denied {denied}, ran {as_bob}");

    // Without the hook, what runs is one reading's uid and gid.
    daemon.berth_ok(&["plugin", "rm", "deny-root"])?;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..60 {
        let out = daemon.berth_ok(&[
            "exec",
            "-u",
            "bob",
            "flip",
            "sh",
            "-c",
            "echo $(id -u):$(id -g)",
        ])?;
        let ids = out.trim().to_string();
        assert!(ids == "1000:1000" || ids == "0:0", "exec {i}: {ids}");
        seen.insert(ids);
    }
    assert_eq!(seen.len(), 2, "bob was only ever {seen:?}");

    // Held still, bob is judged as what he is.
    install(&daemon, &[wasm::DENY_ROOT])?;
    daemon.berth_ok(&["exec", "flip", "touch", "/etc/stop"])?;
    std::thread::sleep(Duration::from_millis(200));
    daemon.berth_ok(&["exec", "flip", "cp", "/etc/p0", "/etc/passwd"])?;
    let out = daemon.berth(&["exec", "-u", "bob", "flip", "id", "-u"])?;
    assert!(!out.status.success(), "bob ran as root under deny-root");
    assert!(stderr(&out).contains("deny-root"), "{}", stderr(&out));
    daemon.berth_ok(&["exec", "flip", "cp", "/etc/p1000", "/etc/passwd"])?;
    assert_eq!(
        daemon
            .berth_ok(&["exec", "-u", "bob", "flip", "id", "-u"])?
            .trim(),
        "1000"
    );
    daemon.berth_ok(&["rm", "-f", "flip"])?;
    Ok(())
}
