#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! The hostile fixtures: each misbehaves, each is stopped with a typed
//! error, and a good plugin in the same manager still answers afterwards.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use berth_plugin_artifacts as artifacts;
use berth_plugins::{Access, DirGrant, Kind, PluginError, PluginManager, PluginState};
use berth_policy::{OnFailure, Verdict};
use common::*;

/// A good plugin still works after a hostile call.
fn good_still_answers(m: &PluginManager) {
    if m.inspect("good").is_err() {
        load(m, "good", Kind::LifecycleHook, artifacts::DENY_ROOT, |s| {
            s.order = 100
        });
    }
    let verdict = m
        .hook("good")
        .unwrap()
        .judge(&pre_create(1000, &[]))
        .unwrap();
    assert_eq!(verdict, Verdict::Allow);
}

#[test]
fn spin_times_out_within_twice_its_timeout() {
    let m = manager();
    load(
        &m,
        "spin",
        Kind::LifecycleHook,
        artifacts::FIXTURE_SPIN,
        |s| s.timeout_ms = Some(200),
    );
    let hook = m.hook("spin").unwrap();
    let start = Instant::now();
    let err = hook.judge(&pre_create(0, &[])).unwrap_err();
    let elapsed = start.elapsed();
    match &err {
        PluginError::Timeout { plugin, after } => {
            assert_eq!(plugin, "spin");
            assert!(*after >= Duration::from_millis(200), "{after:?}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(elapsed < Duration::from_millis(400), "took {elapsed:?}");
    // It fails closed in a chain.
    let outcome = m.run_hooks(&pre_create(1000, &[]));
    assert!(!outcome.allowed);
    assert!(outcome.denied_by.unwrap().reason.contains("timed out"));
    assert_eq!(m.inspect("spin").unwrap().metrics.timeouts, 2);
    good_still_answers(&m);
}

#[test]
fn membomb_stops_at_its_memory_cap() {
    let m = manager();
    load(
        &m,
        "membomb",
        Kind::LifecycleHook,
        artifacts::FIXTURE_MEMBOMB,
        |s| {
            s.memory_mib = Some(48);
            s.timeout_ms = Some(5_000);
        },
    );
    let err = m
        .hook("membomb")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap_err();
    match err {
        PluginError::MemoryLimit { plugin, limit } => {
            assert_eq!(plugin, "membomb");
            assert_eq!(limit, 48 << 20);
        }
        other => panic!("expected a memory limit, got {other:?}"),
    }
    assert_eq!(m.inspect("membomb").unwrap().metrics.memory_limits, 1);
    good_still_answers(&m);
}

#[test]
fn panic_is_a_trap_with_its_message() {
    let m = manager();
    load(
        &m,
        "panic",
        Kind::LifecycleHook,
        artifacts::FIXTURE_PANIC,
        |_| {},
    );
    let err = m
        .hook("panic")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap_err();
    match &err {
        PluginError::Trap { plugin, message } => {
            assert_eq!(plugin, "panic");
            assert!(
                message.contains("fixture-panic: handle called for"),
                "{message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    // The poisoned instance was discarded: the next call traps the same
    // way instead of failing to enter a dead store.
    let again = m
        .hook("panic")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap_err();
    assert!(again.to_string().contains("fixture-panic"), "{again}");
    good_still_answers(&m);
}

#[test]
fn read_passwd_is_refused_unless_granted() {
    let m = manager();
    load(
        &m,
        "read-passwd",
        Kind::LifecycleHook,
        artifacts::FIXTURE_READ_PASSWD,
        |_| {},
    );
    match m
        .hook("read-passwd")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap()
    {
        Verdict::Deny(reason) => assert!(reason.contains("reading /etc/passwd failed"), "{reason}"),
        other => panic!("the guest read /etc/passwd: {other:?}"),
    }
    // Granting a directory as /etc makes the same read work, so the
    // refusal above is the sandbox and not a broken fixture.
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(etc.path().join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    load(
        &m,
        "read-passwd-granted",
        Kind::LifecycleHook,
        artifacts::FIXTURE_READ_PASSWD,
        |s| {
            s.grants.dirs.push(DirGrant {
                host: etc.path().to_path_buf(),
                guest: "/etc".into(),
                access: Access::Ro,
            });
        },
    );
    let verdict = m
        .hook("read-passwd-granted")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap();
    assert_eq!(verdict, Verdict::Allow);
    good_still_answers(&m);
}

#[test]
fn open_socket_is_refused_unless_granted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = manager();
    load(
        &m,
        "open-socket",
        Kind::LifecycleHook,
        artifacts::FIXTURE_OPEN_SOCKET,
        |s| {
            s.config = serde_json::json!({ "port": port });
        },
    );
    match m
        .hook("open-socket")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap()
    {
        Verdict::Deny(reason) => assert!(reason.contains("failed"), "{reason}"),
        other => panic!("the guest connected without a grant: {other:?}"),
    }
    // A grant for another port is not enough.
    load(
        &m,
        "open-socket-other",
        Kind::LifecycleHook,
        artifacts::FIXTURE_OPEN_SOCKET,
        |s| {
            s.config = serde_json::json!({ "port": port });
            s.grants.net = vec![format!("127.0.0.1:{}", port.wrapping_add(1))];
        },
    );
    assert!(matches!(
        m.hook("open-socket-other")
            .unwrap()
            .judge(&pre_create(0, &[]))
            .unwrap(),
        Verdict::Deny(_)
    ));
    load(
        &m,
        "open-socket-granted",
        Kind::LifecycleHook,
        artifacts::FIXTURE_OPEN_SOCKET,
        |s| {
            s.config = serde_json::json!({ "port": port });
            s.grants.net = vec![format!("127.0.0.1:{port}")];
        },
    );
    let verdict = m
        .hook("open-socket-granted")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap();
    assert_eq!(verdict, Verdict::Allow);
    good_still_answers(&m);
}

#[test]
fn circuit_breaker_cuts_off_then_retries() {
    let m = manager_with_breaker(3, Duration::from_millis(300));
    load(
        &m,
        "panic",
        Kind::LifecycleHook,
        artifacts::FIXTURE_PANIC,
        |s| s.on_failure = Some(OnFailure::Open),
    );
    let hook = m.hook("panic").unwrap();
    for _ in 0..3 {
        assert!(matches!(
            hook.judge(&pre_create(0, &[])),
            Err(PluginError::Trap { .. })
        ));
    }
    assert!(matches!(
        hook.judge(&pre_create(0, &[])),
        Err(PluginError::CutOff { .. })
    ));
    assert!(matches!(
        m.inspect("panic").unwrap().state,
        PluginState::CutOff { .. }
    ));
    // A cut-off hook that fails open is skipped by the chain.
    assert!(m.run_hooks(&pre_create(0, &[])).allowed);
    let calls_while_cut = m.inspect("panic").unwrap().metrics.traps;
    assert_eq!(
        calls_while_cut, 3,
        "no call reached the guest while cut off"
    );
    std::thread::sleep(Duration::from_millis(350));
    // Retried after the cool-off: it traps again (and is cut off again).
    assert!(matches!(
        hook.judge(&pre_create(0, &[])),
        Err(PluginError::Trap { .. })
    ));
    assert!(matches!(
        hook.judge(&pre_create(0, &[])),
        Err(PluginError::CutOff { .. })
    ));
    good_still_answers(&m);
}

#[test]
fn a_hook_sleeping_in_wasi_times_out_at_its_deadline() {
    let m = manager();
    load(
        &m,
        "sleep",
        Kind::LifecycleHook,
        artifacts::FIXTURE_SLEEP,
        |s| s.timeout_ms = Some(200),
    );
    let hook = m.hook("sleep").unwrap();
    let start = Instant::now();
    let err = hook.judge(&pre_create(0, &[])).unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
    // Failing closed it denies; the next call gets a fresh instance.
    let outcome = m.run_hooks(&pre_create(1000, &[]));
    assert!(!outcome.allowed);
    assert!(outcome.denied_by.unwrap().reason.contains("timed out"));
    assert_eq!(m.inspect("sleep").unwrap().stuck_calls, 0);
    good_still_answers(&m);
}

/// A FIFO nobody writes to, in a directory of its own, granted as /data.
fn fifo_grant() -> (tempfile::TempDir, DirGrant) {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    let grant = DirGrant {
        host: dir.path().to_path_buf(),
        guest: "/data".into(),
        access: Access::Ro,
    };
    (dir, grant)
}

#[test]
fn a_hook_blocked_on_a_fifo_answers_at_its_deadline_and_is_refused_while_stuck() {
    // A breaker that never trips, to see the stuck count alone at work.
    let m = manager_with_breaker(1000, Duration::from_secs(1));
    let (dir, grant) = fifo_grant();
    load(
        &m,
        "fifo",
        Kind::LifecycleHook,
        artifacts::FIXTURE_FIFO,
        |s| {
            s.timeout_ms = Some(200);
            s.grants.dirs.push(grant);
        },
    );
    let hook = m.hook("fifo").unwrap();
    for n in 1..=4 {
        let start = Instant::now();
        let err = hook.judge(&pre_create(1000, &[])).unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
        assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");
        assert_eq!(m.inspect("fifo").unwrap().stuck_calls, n);
    }
    // Four stuck: refused without a call.
    let start = Instant::now();
    let err = hook.judge(&pre_create(1000, &[])).unwrap_err();
    assert!(
        matches!(err, PluginError::Stuck { calls: 4, .. }),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(50));
    assert!(matches!(
        m.inspect("fifo").unwrap().state,
        PluginState::Stuck { calls: 4 }
    ));
    assert!(!m.run_hooks(&pre_create(1000, &[])).allowed);
    // A writer comes: the stuck calls end, and the plugin is called again.
    let fifo = dir.path().join("fifo");
    let until = Instant::now() + Duration::from_secs(10);
    while m.inspect("fifo").unwrap().stuck_calls > 0 {
        assert!(Instant::now() < until, "the stuck calls never ended");
        // Non-blocking: with no reader left it fails instead of waiting.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(matches!(
        m.inspect("fifo").unwrap().state,
        PluginState::Enabled
    ));
    good_still_answers(&m);
}
