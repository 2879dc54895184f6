#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! Each example plugin through the adapter the daemon uses.

mod common;

use berth_plugin_artifacts as artifacts;
use berth_plugins::Kind;
use berth_policy::{
    ContainerEvent, Event, EventKind, ExecEvent, ImageEvent, Limits, Mode, UpdateEvent, Verdict,
};
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
    assert_eq!(
        info.subscriptions,
        vec![EventKind::PreCreate, EventKind::PreExec]
    );
    assert!(!info.first_edition);
}

fn exec_as(uid: u32, labels: &[(&str, &str)]) -> Event {
    Event::PreExec(ExecEvent {
        container: ContainerEvent {
            name: "web".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ContainerEvent::default()
        },
        command: vec!["sh".into()],
        user: uid.to_string(),
        uid,
        ..ExecEvent::default()
    })
}

#[test]
fn deny_root_denies_exec_as_root_unless_the_container_is_labelled() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    let outcome = m.run_hooks(&exec_as(0, &[]));
    assert!(!outcome.allowed);
    let reason = outcome.denied_by.unwrap().reason;
    assert!(reason.contains("exec -u"), "{reason}");
    assert!(m.run_hooks(&exec_as(65534, &[])).allowed);
    assert!(
        m.run_hooks(&exec_as(0, &[("berth.policy/allow-root", "true")]))
            .allowed
    );
}

#[test]
fn default_limits_denies_an_update_that_lifts_a_limit() {
    let m = manager();
    load(
        &m,
        "default-limits",
        Kind::LifecycleHook,
        artifacts::DEFAULT_LIMITS,
        |_| {},
    );
    let limited = Limits {
        memory: Some(256 << 20),
        pids: Some(512),
        ..Limits::default()
    };
    let update = |after: Limits| {
        Event::PreUpdate(UpdateEvent {
            container: ContainerEvent::default(),
            before: limited.clone(),
            after,
        })
    };
    let lifted = m.run_hooks(&update(Limits {
        memory: None,
        ..limited.clone()
    }));
    assert!(!lifted.allowed);
    assert!(
        m.run_hooks(&update(Limits {
            memory: Some(1 << 30),
            ..limited.clone()
        }))
        .allowed
    );
}

#[test]
fn a_first_edition_hook_loads_judges_and_never_sees_newer_events() {
    let m = manager();
    load(
        &m,
        "old",
        Kind::LifecycleHook,
        artifacts::FIXTURE_OLD_HOOK,
        |_| {},
    );
    let info = m.inspect("old").unwrap();
    assert!(info.first_edition, "{info:?}");
    assert_eq!(info.subscriptions, vec![EventKind::PreCreate]);
    let outcome = m.run_hooks(&pre_create(0, &[]));
    assert!(!outcome.allowed);
    assert!(
        outcome
            .denied_by
            .unwrap()
            .reason
            .contains("fixture-old-hook refuses it")
    );
    assert!(m.run_hooks(&pre_create(1000, &[])).allowed);
    // Not subscribed (it cannot be) to exec: not called for it.
    let calls = m.inspect("old").unwrap().metrics.calls;
    assert!(m.run_hooks(&exec_as(0, &[])).allowed);
    assert!(m.hook("old").unwrap().judge(&exec_as(0, &[])).is_ok());
    assert_eq!(m.inspect("old").unwrap().metrics.calls, calls);
}

#[test]
fn a_huge_deny_reason_is_cut_with_a_note() {
    let m = manager();
    load(
        &m,
        "big",
        Kind::LifecycleHook,
        artifacts::FIXTURE_BIG_DENY,
        |s| {
            s.memory_mib = Some(256);
            s.timeout_ms = Some(10_000);
        },
    );
    let Verdict::Deny(reason) = m.hook("big").unwrap().judge(&pre_create(0, &[])).unwrap() else {
        panic!("big-deny did not deny");
    };
    assert!(reason.len() < 5 * 1024, "{} bytes", reason.len());
    assert!(
        reason.ends_with("more bytes cut by berth]"),
        "{}",
        &reason[4000..]
    );
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
