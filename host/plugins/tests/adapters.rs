#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! Each example plugin through the adapter the daemon uses.

mod common;

use berth_plugin_artifacts as artifacts;
use berth_plugins::Kind;
use berth_policy::{Event, ImageEvent, Mode, Verdict};
use common::*;

#[test]
fn deny_root_denies_uid_0_and_allows_with_the_label() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    let outcome = m.run_hooks(&pre_create(0, &[]));
    assert!(!outcome.allowed);
    let denial = outcome.denied_by.unwrap();
    assert_eq!(denial.hook, "deny-root");
    assert!(denial.reason.contains("root"), "{}", denial.reason);

    let outcome = m.run_hooks(&pre_create(0, &[("berth.policy/allow-root", "true")]));
    assert!(outcome.allowed, "{outcome:?}");
    assert!(m.run_hooks(&pre_create(1000, &[])).allowed);

    let info = m.inspect("deny-root").unwrap();
    assert_eq!(
        info.metrics.calls, 4,
        "subscriptions + three events: {info:?}"
    );
    assert_eq!(info.metrics.denials, 1);
    assert_eq!(info.subscriptions, vec![berth_policy::EventKind::PreCreate]);
}

#[test]
fn deny_root_reads_its_config() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |s| {
            s.config = serde_json::json!({"allow_label": "example.com/root-ok"});
        },
    );
    assert!(
        !m.run_hooks(&pre_create(0, &[("berth.policy/allow-root", "true")]))
            .allowed
    );
    assert!(
        m.run_hooks(&pre_create(0, &[("example.com/root-ok", "true")]))
            .allowed
    );
}

#[test]
fn default_limits_mutates_pre_create() {
    let m = manager();
    load(
        &m,
        "default-limits",
        Kind::LifecycleHook,
        artifacts::DEFAULT_LIMITS,
        |s| {
            s.config = serde_json::json!({"memory": "128m", "pids": 64});
        },
    );
    let outcome = m.run_hooks(&pre_create(1000, &[]));
    assert!(outcome.allowed);
    assert_eq!(outcome.patch.limits.memory, Some(128 << 20));
    assert_eq!(outcome.patch.limits.pids, Some(64));
}

#[test]
fn allowed_registries_judges_pulls() {
    let m = manager();
    load(
        &m,
        "allowed-registries",
        Kind::LifecycleHook,
        artifacts::ALLOWED_REGISTRIES,
        |s| {
            s.config = serde_json::json!({"registries": ["docker.io", "localhost:*"]});
        },
    );
    let pull = |registry: &str| {
        Event::PrePull(ImageEvent {
            reference: format!("{registry}/library/busybox:latest"),
            registry: registry.into(),
            repository: "library/busybox".into(),
            tag: Some("latest".into()),
            digest: None,
        })
    };
    assert!(m.run_hooks(&pull("docker.io")).allowed);
    assert!(m.run_hooks(&pull("localhost:5000")).allowed);
    let outcome = m.run_hooks(&pull("evil.example.com"));
    assert!(!outcome.allowed);
    assert!(
        outcome
            .denied_by
            .unwrap()
            .reason
            .contains("evil.example.com")
    );
    // It does not subscribe to pre-create.
    assert!(m.run_hooks(&pre_create(0, &[])).allowed);
}

#[test]
fn hooks_run_in_order_and_audit_mode_counts_without_denying() {
    let m = manager();
    load(
        &m,
        "limits",
        Kind::LifecycleHook,
        artifacts::DEFAULT_LIMITS,
        |s| s.order = 1,
    );
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |s| {
            s.order = 2;
            s.mode = Mode::Audit;
        },
    );
    assert_eq!(m.hook_chain().names(), vec!["limits", "deny-root"]);
    let outcome = m.run_hooks(&pre_create(0, &[]));
    assert!(outcome.allowed, "audit mode must not deny: {outcome:?}");
    assert!(outcome.denied_by.is_none());
    assert_eq!(outcome.audit_notes.len(), 1);
    assert_eq!(outcome.audit_notes[0].hook, "deny-root");
    assert!(
        outcome.patch.limits.memory.is_some(),
        "enforced patches still apply"
    );
    let info = m.inspect("deny-root").unwrap();
    assert_eq!(info.metrics.audit_denials, 1);
    assert_eq!(info.metrics.denials, 0);
}

#[test]
fn disabled_hooks_are_not_in_the_chain() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    m.disable("deny-root").unwrap();
    assert!(m.run_hooks(&pre_create(0, &[])).allowed);
    assert!(matches!(
        m.hook("deny-root"),
        Err(berth_plugins::PluginError::Disabled { .. })
    ));
    m.enable("deny-root").unwrap();
    assert!(!m.run_hooks(&pre_create(0, &[])).allowed);
}

#[test]
fn direct_hook_verdict() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    let verdict = m
        .hook("deny-root")
        .unwrap()
        .judge(&pre_create(0, &[]))
        .unwrap();
    assert!(matches!(verdict, Verdict::Deny(_)));
}
