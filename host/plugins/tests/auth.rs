#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! htpasswd-rbac and auth-panic through the auth chain.

mod common;

use std::sync::Arc;

use berth_auth::{Action, AuthError, Authenticator, Authorizer, Credentials, Decision, Principal};
use berth_plugin_artifacts as artifacts;
use berth_plugins::{Access, DirGrant, Kind, PluginManager};
use berth_policy::OnFailure;
use common::*;

/// An htpasswd file with bcrypt entries for alice and bob, granted
/// read-only as /auth.
fn htpasswd_rbac(m: &PluginManager, name: &str, order: i64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let alice = bcrypt::hash("alice-pw", 4).unwrap();
    let bob = bcrypt::hash("bob-pw", 4).unwrap();
    std::fs::write(
        dir.path().join("htpasswd"),
        format!("alice:{alice}\nbob:{bob}\n"),
    )
    .unwrap();
    load(m, name, Kind::AuthProvider, artifacts::HTPASSWD_RBAC, |s| {
        s.order = order;
        // bcrypt in a debug guest is slow on a loaded machine.
        s.timeout_ms = Some(5_000);
        s.config = serde_json::json!({
            "htpasswd": "/auth/htpasswd",
            "groups": { "team": ["bob"] },
            "rules": [
                { "users": ["alice"], "repositories": "alice/*", "actions": ["pull", "push", "delete"] },
                { "groups": ["team"], "repositories": "team/*", "actions": ["pull", "push"] }
            ],
            "anonymous": [{ "repositories": "public/*", "actions": ["pull"] }]
        });
        s.grants.dirs.push(DirGrant {
            host: dir.path().to_path_buf(),
            guest: "/auth".into(),
            access: Access::Ro,
        });
    });
    dir
}

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        user: user.into(),
        password: password.into(),
    }
}

#[test]
fn htpasswd_rbac_authenticates_and_authorizes() {
    let m = manager();
    let _dir = htpasswd_rbac(&m, "htpasswd", 0);
    let chain = m.auth_chain(None);

    assert!(matches!(
        chain.authenticate(&basic("alice", "wrong")),
        Err(AuthError::InvalidCredentials)
    ));
    // The provider itself says rejected (not abstain) for a wrong password.
    let direct = m.auth_provider("htpasswd").unwrap();
    assert!(matches!(
        direct.authenticate(&basic("alice", "wrong")).unwrap(),
        berth_plugins::AuthnAnswer::Rejected(_)
    ));
    assert_eq!(
        direct.authenticate(&basic("mallory", "x")).unwrap(),
        berth_plugins::AuthnAnswer::Abstain
    );
    let bob = chain.authenticate(&basic("bob", "bob-pw")).unwrap();
    assert_eq!(bob.name.as_deref(), Some("bob"));
    // bob's group rule: push on team/*, nothing on alice/*.
    assert_eq!(
        chain.authorize(&bob, Action::Push, "team/app"),
        Decision::Allow
    );
    assert!(matches!(
        chain.authorize(&bob, Action::Push, "alice/app"),
        Decision::Deny(_)
    ));
    assert!(matches!(
        chain.authorize(&bob, Action::Delete, "team/app"),
        Decision::Deny(_)
    ));

    let anon = chain.authenticate(&Credentials::Anonymous).unwrap();
    assert!(anon.is_anonymous());
    assert_eq!(
        chain.authorize(&anon, Action::Pull, "public/busybox"),
        Decision::Allow
    );
    assert!(matches!(
        chain.authorize(&anon, Action::Pull, "team/app"),
        Decision::Deny(_)
    ));
    assert!(matches!(
        chain.authorize(&anon, Action::Push, "public/busybox"),
        Decision::Deny(_)
    ));

    // A user the file does not know: the provider abstains, nobody else
    // decides, so the credentials are refused.
    assert!(matches!(
        chain.authenticate(&basic("mallory", "x")),
        Err(AuthError::InvalidCredentials)
    ));
}

#[test]
fn auth_panic_fails_closed() {
    let m = manager();
    load(
        &m,
        "auth-panic",
        Kind::AuthProvider,
        artifacts::FIXTURE_AUTH_PANIC,
        |_| {},
    );
    let _dir = htpasswd_rbac(&m, "htpasswd", 1);
    let chain = m.auth_chain(None);
    assert!(
        chain.authenticate(&basic("bob", "bob-pw")).is_err(),
        "a failing provider must refuse"
    );
    let decision = chain.authorize(&Principal::user("bob"), Action::Pull, "team/app");
    match decision {
        Decision::Deny(reason) => assert!(reason.contains("auth-panic"), "{reason}"),
        Decision::Allow => panic!("fail closed must deny"),
    }
    assert!(m.inspect("auth-panic").unwrap().metrics.traps >= 2);
}

#[test]
fn auth_panic_failing_open_lets_the_next_provider_decide() {
    let m = manager();
    load(
        &m,
        "auth-panic",
        Kind::AuthProvider,
        artifacts::FIXTURE_AUTH_PANIC,
        |s| {
            s.on_failure = Some(OnFailure::Open);
        },
    );
    let _dir = htpasswd_rbac(&m, "htpasswd", 1);
    let chain = m.auth_chain(None);
    // The provider itself says rejected (not abstain) for a wrong password.
    let direct = m.auth_provider("htpasswd").unwrap();
    assert!(matches!(
        direct.authenticate(&basic("alice", "wrong")).unwrap(),
        berth_plugins::AuthnAnswer::Rejected(_)
    ));
    assert_eq!(
        direct.authenticate(&basic("mallory", "x")).unwrap(),
        berth_plugins::AuthnAnswer::Abstain
    );
    let bob = chain.authenticate(&basic("bob", "bob-pw")).unwrap();
    assert_eq!(bob.name.as_deref(), Some("bob"));
    assert_eq!(
        chain.authorize(&bob, Action::Push, "team/app"),
        Decision::Allow
    );
}

/// A native provider that knows one user and allows everything to them.
struct Native;
impl Authenticator for Native {
    fn authenticate(&self, c: &Credentials) -> Result<Principal, AuthError> {
        match c {
            Credentials::Basic { user, password } if user == "root" && password == "native" => {
                Ok(Principal::user("root"))
            }
            Credentials::Anonymous => Ok(Principal::anonymous()),
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}
impl Authorizer for Native {
    fn authorize(&self, p: &Principal, _: Action, _: &str) -> Decision {
        if p.name.as_deref() == Some("root") {
            Decision::Allow
        } else {
            Decision::Deny("native: only root".into())
        }
    }
}

#[test]
fn native_provider_placed_last_is_the_fallback() {
    let m = manager();
    let _dir = htpasswd_rbac(&m, "htpasswd", 0);
    let chain = m.auth_chain(Some((10, Arc::new(Native))));
    assert_eq!(chain.len(), 2);
    // htpasswd abstains on an unknown user; the native provider knows root.
    let root = chain.authenticate(&basic("root", "native")).unwrap();
    assert_eq!(root.name.as_deref(), Some("root"));
    // htpasswd denies root on team/app (no rule): the first deny wins.
    assert!(matches!(
        chain.authorize(&root, Action::Pull, "team/app"),
        Decision::Deny(_)
    ));
}

/// A native provider with repository rights everywhere and control rights
/// to read only, as berth's own users with `*:*` and `control:read`.
struct ReadOnlyControl;
impl Authenticator for ReadOnlyControl {
    fn authenticate(&self, _: &Credentials) -> Result<Principal, AuthError> {
        Ok(Principal::user("reader"))
    }
}
impl Authorizer for ReadOnlyControl {
    fn authorize(&self, _: &Principal, _: Action, _: &str) -> Decision {
        Decision::Allow
    }
    fn authorize_control(&self, _: &Principal, action: Action, _: &str) -> Decision {
        if action == Action::Pull {
            Decision::Allow
        } else {
            Decision::Deny("native: reads only".into())
        }
    }
}

#[test]
fn a_native_link_answers_control_operations_as_control_operations() {
    let m = manager();
    let chain = m.auth_chain(Some((0, Arc::new(ReadOnlyControl))));
    let reader = Principal::user("reader");
    assert_eq!(
        chain.authorize_control(&reader, Action::Pull, "GET /v1/containers"),
        Decision::Allow
    );
    // Its repository rights, which allow everything, are not asked.
    assert_eq!(
        chain.authorize_control(&reader, Action::Admin, "POST /v1/containers"),
        Decision::Deny("native: reads only".into())
    );
    // Through the trait, as berth's AuthService calls it.
    let provider: &dyn Authorizer = &chain;
    assert!(
        !provider
            .authorize_control(&reader, Action::Admin, "POST /v1/containers")
            .is_allowed()
    );
    assert!(
        provider
            .authorize(&reader, Action::Push, "team/app")
            .is_allowed()
    );
}

#[test]
fn htpasswd_rbac_control_rules_see_control_targets() {
    let m = manager();
    let dir = tempfile::tempdir().unwrap();
    let bob = bcrypt::hash("bob-pw", 4).unwrap();
    std::fs::write(dir.path().join("htpasswd"), format!("bob:{bob}\n")).unwrap();
    load(
        &m,
        "rbac",
        Kind::AuthProvider,
        artifacts::HTPASSWD_RBAC,
        |s| {
            s.timeout_ms = Some(5_000);
            s.config = serde_json::json!({
                "htpasswd": "/auth/htpasswd",
                "rules": [
                    { "users": ["bob"], "control": "*", "actions": ["pull"] },
                    { "users": ["bob"], "repositories": "*", "actions": ["pull", "push"] }
                ]
            });
            s.grants.dirs.push(DirGrant {
                host: dir.path().to_path_buf(),
                guest: "/auth".into(),
                access: Access::Ro,
            });
        },
    );
    let chain = m.auth_chain(None);
    let bob = chain.authenticate(&basic("bob", "bob-pw")).unwrap();
    let provider: &dyn Authorizer = &chain;
    assert!(
        provider
            .authorize_control(&bob, Action::Pull, "GET /v1/containers/{id}")
            .is_allowed()
    );
    match provider.authorize_control(&bob, Action::Admin, "POST /v1/containers") {
        Decision::Deny(reason) => assert!(
            reason.contains(r#"admin control "POST /v1/containers""#),
            "{reason}"
        ),
        Decision::Allow => panic!("a read-only rule allowed a run"),
    }
    assert!(provider.authorize(&bob, Action::Push, "x/y").is_allowed());
}
