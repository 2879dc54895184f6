#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! Management: load errors, duplicates, the compile cache, reload under
//! load, metrics, specs from berth.toml, the offline runner.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use berth_plugin_artifacts as artifacts;
use berth_plugins::{
    CacheOutcome, Kind, ManagerOptions, PluginError, PluginManager, PluginSpec, PluginState,
    test_plugin,
};
use common::*;

#[test]
fn cache_hit_skips_compilation() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = bytes(artifacts::DENY_ROOT);
    let first = PluginManager::new(ManagerOptions::new(dir.path()));
    let start = Instant::now();
    let info = first
        .load(spec("a", Kind::LifecycleHook, "x"), &bytes)
        .unwrap();
    let compile = start.elapsed();
    assert_eq!(info.cache, CacheOutcome::Compiled);
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(".cwasm"), "{cached:?}");

    let second = PluginManager::new(ManagerOptions::new(dir.path()));
    let start = Instant::now();
    let info = second
        .load(spec("a", Kind::LifecycleHook, "x"), &bytes)
        .unwrap();
    let hit = start.elapsed();
    assert_eq!(info.cache, CacheOutcome::Hit);
    eprintln!("load with compile: {compile:?}; load from cache: {hit:?}");
    assert!(!second.run_hooks(&pre_create(0, &[])).allowed);
}

#[test]
fn a_corrupt_cache_entry_is_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = bytes(artifacts::DENY_ROOT);
    let m = PluginManager::new(ManagerOptions::new(dir.path()));
    m.load(spec("a", Kind::LifecycleHook, "x"), &bytes).unwrap();
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();
    let m = PluginManager::new(ManagerOptions::new(dir.path()));
    let info = m.load(spec("a", Kind::LifecycleHook, "x"), &bytes).unwrap();
    assert_eq!(info.cache, CacheOutcome::Compiled);
}

#[test]
fn a_cache_dir_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let m = PluginManager::new(ManagerOptions::new(dir.path()));
    let err = m
        .load(
            spec("a", Kind::LifecycleHook, "x"),
            &bytes(artifacts::DENY_ROOT),
        )
        .unwrap_err();
    assert!(err.to_string().contains("writable by others"), "{err}");
}

#[test]
fn duplicates_and_bad_input_are_clear_errors() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    let err = m
        .load(
            spec("deny-root", Kind::LifecycleHook, "x"),
            &bytes(artifacts::DENY_ROOT),
        )
        .unwrap_err();
    assert!(matches!(err, PluginError::Duplicate { .. }), "{err}");

    let err = m
        .load(spec("junk", Kind::LifecycleHook, "x"), b"not wasm")
        .unwrap_err();
    assert!(matches!(err, PluginError::Load { .. }), "{err}");
    assert!(err.to_string().contains("junk"), "{err}");

    // A hook loaded as an auth provider does not export the auth world.
    let err = m
        .load(
            spec("hook-as-auth", Kind::AuthProvider, "x"),
            &bytes(artifacts::DENY_ROOT),
        )
        .unwrap_err();
    assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");

    // A scanner imports image-fs, which the hook world does not provide.
    let err = m
        .load(
            spec("scanner-as-hook", Kind::LifecycleHook, "x"),
            &bytes(artifacts::PKG_INVENTORY),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::Load { .. } | PluginError::WrongKind { .. }
        ),
        "{err}"
    );

    let mut bad = spec("Bad Name", Kind::LifecycleHook, "x");
    let err = m
        .load(bad.clone(), &bytes(artifacts::DENY_ROOT))
        .unwrap_err();
    assert!(matches!(err, PluginError::Config { .. }), "{err}");
    bad.name = "ok".into();
    bad.memory_mib = Some(100_000);
    let err = m
        .load(bad.clone(), &bytes(artifacts::DENY_ROOT))
        .unwrap_err();
    assert!(err.to_string().contains("memory_mib"), "{err}");
    bad.memory_mib = None;
    bad.grants.net = vec!["localhost".into()];
    let err = m.load(bad, &bytes(artifacts::DENY_ROOT)).unwrap_err();
    assert!(err.to_string().contains("IP:PORT"), "{err}");

    assert!(matches!(
        m.remove("nope"),
        Err(PluginError::NotFound { .. })
    ));
    assert_eq!(m.list().len(), 1, "failed loads leave nothing behind");
}

#[test]
fn spec_reads_from_berth_toml() {
    let spec: PluginSpec = toml::from_str(
        r#"
        name = "deny-root"
        kind = "lifecycle-hook"
        source = "localhost:5000/policies/deny-root@sha256:0123"
        order = 5
        mode = "audit"
        on_failure = "open"
        timeout_ms = 50
        memory_mib = 16
        [config]
        allow_label = "ok"
        nested = { a = [1, 2] }
        [grants]
        dirs = [{ host = "/tmp", guest = "/data", access = "rw" }]
        env = ["TZ"]
        net = ["127.0.0.1:8080"]
        "#,
    )
    .unwrap();
    assert_eq!(spec.kind, Kind::LifecycleHook);
    assert_eq!(spec.mode, berth_policy::Mode::Audit);
    assert_eq!(spec.on_failure(), berth_policy::OnFailure::Open);
    assert_eq!(spec.timeout().as_millis(), 50);
    assert_eq!(spec.memory_limit(), 16 << 20);
    assert_eq!(spec.config["nested"]["a"][1], 2);
    assert_eq!(spec.grants.dirs[0].access, berth_plugins::Access::Rw);
    assert!(spec.enabled);

    let defaults: PluginSpec =
        toml::from_str("name = \"a\"\nkind = \"auth-provider\"\nsource = \"a.wasm\"").unwrap();
    assert_eq!(defaults.on_failure(), berth_policy::OnFailure::Closed);
    assert_eq!(defaults.timeout().as_millis(), 100);
    assert_eq!(defaults.memory_limit(), 64 << 20);

    let err =
        toml::from_str::<PluginSpec>("name = \"a\"\nkind = \"hook\"\nsource = \"a\"").unwrap_err();
    assert!(err.to_string().contains("lifecycle-hook"), "{err}");
}

#[test]
fn reload_under_concurrent_calls_loses_none() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (m, stop, calls) = (m.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // uid 0 with both labels: allowed under either config,
                    // denied only if a call fails (it fails closed).
                    let event =
                        pre_create(0, &[("berth.policy/allow-root", "true"), ("new", "true")]);
                    let outcome = m.run_hooks(&event);
                    if !outcome.allowed {
                        bad.push(outcome);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                bad
            })
        })
        .collect();
    let bytes = bytes(artifacts::DENY_ROOT);
    for i in 0..6 {
        let mut s = spec("deny-root", Kind::LifecycleHook, "x");
        if i % 2 == 0 {
            s.config = serde_json::json!({ "allow_label": "new" });
        }
        m.reload("deny-root", s, &bytes).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let bad = w.join().unwrap();
        assert!(bad.is_empty(), "calls failed during reload: {bad:?}");
    }
    let info = m.inspect("deny-root").unwrap();
    assert_eq!(info.metrics.errors, 0);
    assert!(calls.load(Ordering::Relaxed) > 20, "the workers made calls");
    // Metrics carry over reloads: every call was counted.
    assert!(info.metrics.calls >= calls.load(Ordering::Relaxed));
    // The new spec is the one in force.
    assert!(
        m.run_hooks(&pre_create(0, &[("berth.policy/allow-root", "true")]))
            .allowed
    );
    let mut s = spec("deny-root", Kind::LifecycleHook, "x");
    s.config = serde_json::json!({ "allow_label": "new" });
    m.reload("deny-root", s, &bytes).unwrap();
    assert!(
        !m.run_hooks(&pre_create(0, &[("berth.policy/allow-root", "true")]))
            .allowed
    );
}

#[test]
fn list_inspect_remove_and_metrics() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    load(
        &m,
        "limits",
        Kind::LifecycleHook,
        artifacts::DEFAULT_LIMITS,
        |s| s.enabled = false,
    );
    let list = m.list();
    assert_eq!(
        list.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["deny-root", "limits"]
    );
    assert_eq!(list[0].state, PluginState::Enabled);
    assert_eq!(list[1].state, PluginState::Disabled);
    assert!(list[0].digest.starts_with("sha256:"));
    assert_eq!(
        list[0].digest,
        berth_plugins::digest_of(&bytes(artifacts::DENY_ROOT))
    );

    m.run_hooks(&pre_create(0, &[]));
    let mut text = String::new();
    m.render_prometheus(&mut text);
    assert!(
        text.contains("# TYPE berth_plugin_call_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("berth_plugin_denials_total{plugin=\"deny-root\",kind=\"lifecycle-hook\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "berth_plugin_call_seconds_count{plugin=\"deny-root\",kind=\"lifecycle-hook\"} 2"
        ),
        "{text}"
    );
    let info = m.inspect("deny-root").unwrap();
    assert!(info.metrics.p50_us.is_some());

    m.remove("limits").unwrap();
    assert!(matches!(
        m.inspect("limits"),
        Err(PluginError::NotFound { .. })
    ));
}

#[test]
fn offline_runner_prints_verdicts() {
    let out = test_plugin(
        std::path::Path::new(artifacts::DENY_ROOT),
        Kind::LifecycleHook,
        r#"{"pre-create": {"name": "web", "uid": 0}}"#,
        None,
    )
    .unwrap();
    assert!(out.contains("deny") && out.contains("root"), "{out}");
    let out = test_plugin(
        std::path::Path::new(artifacts::DEFAULT_LIMITS),
        Kind::LifecycleHook,
        r#"{"pre-create": {"name": "web", "uid": 1000}}"#,
        Some(r#"{"pids": 7}"#),
    )
    .unwrap();
    assert!(out.contains("mutate") && out.contains('7'), "{out}");
    let err = test_plugin(
        std::path::Path::new(artifacts::DENY_ROOT),
        Kind::LifecycleHook,
        r#"{"pre-crate": {}}"#,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("pre-create"), "{err}");
    let out = test_plugin(
        std::path::Path::new(artifacts::FIXTURE_AUTH_PANIC),
        Kind::AuthProvider,
        r#"{"credentials": "anonymous", "action": "pull", "target": {"name": "x"}}"#,
        None,
    );
    assert!(matches!(out, Err(PluginError::Trap { .. })), "{out:?}");
}
