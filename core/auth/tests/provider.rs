//! An external provider (the host's chain of auth plugins) in charge of
//! passwords and permissions, while challenges and tokens stay native.

mod common;

use std::sync::Arc;

use berth_auth::{
    Access, Action, AuthError, Authenticator, Authorizer, Credentials, Decision, Denial, Mode,
    Principal, conformance,
};
use common::{basic, bearer, env};

/// Knows one user, carol, who may push `team/*`.
struct Carol;

impl Authenticator for Carol {
    fn authenticate(&self, c: &Credentials) -> Result<Principal, AuthError> {
        match c {
            Credentials::Anonymous => Ok(Principal::anonymous()),
            Credentials::Basic { user, password } if user == "carol" && password == "c-pw" => {
                Ok(Principal::user("carol"))
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}

impl Authorizer for Carol {
    fn authorize(&self, p: &Principal, action: Action, repo: &str) -> Decision {
        match p.name.as_deref() {
            Some("carol") if repo.starts_with("team/") && action != Action::Admin => {
                Decision::Allow
            }
            _ => Decision::Deny(format!("carol's rules do not allow {action} on {repo}")),
        }
    }
}

fn push(repo: &str) -> Vec<Access> {
    vec![Access::repository(repo, &[Action::Pull, Action::Push])]
}

#[test]
fn the_provider_decides_passwords_and_permissions() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    e.auth.set_provider(Some(Arc::new(Carol)));
    let p = e
        .auth
        .check(None, Some(&basic("carol", "c-pw")), &push("team/app"));
    assert_eq!(
        p.map_err(|d| anyhow::anyhow!("{d}"))?.name.as_deref(),
        Some("carol")
    );
    let denied = e
        .auth
        .check(None, Some(&basic("carol", "c-pw")), &push("other/app"));
    assert!(matches!(denied, Err(Denial::Denied { .. })), "{denied:?}");
    // The native users are no longer consulted.
    let native = e
        .auth
        .check(None, Some(&basic("alice", "alice-pw")), &push("team/app"));
    assert!(
        matches!(native, Err(Denial::Unauthorized { .. })),
        "{native:?}"
    );
    // Back to native.
    e.auth.set_provider(None);
    assert!(
        e.auth
            .check(None, Some(&basic("alice", "alice-pw")), &push("team/app"))
            .is_ok()
    );
    Ok(())
}

#[test]
fn tokens_carry_what_the_provider_allowed() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    e.auth.set_provider(Some(Arc::new(Carol)));
    let scopes = vec![
        "repository:team/app:pull,push".to_string(),
        "repository:other/app:pull,push".to_string(),
    ];
    let t = e
        .auth
        .issue_token(
            None,
            Some(&basic("carol", "c-pw")),
            Some("berth"),
            &scopes,
            None,
        )
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let ok = e
        .auth
        .check(None, Some(&bearer(&t.token)), &push("team/app"));
    assert!(ok.is_ok(), "{ok:?}");
    let no = e
        .auth
        .check(None, Some(&bearer(&t.token)), &push("other/app"));
    assert!(no.is_err(), "the token must not carry other/app");
    let wrong = e.auth.issue_token(
        None,
        Some(&basic("carol", "nope")),
        Some("berth"),
        &scopes,
        None,
    );
    assert!(
        matches!(wrong, Err(Denial::Unauthorized { .. })),
        "{wrong:?}"
    );
    Ok(())
}

#[test]
fn the_native_provider_keeps_the_contract() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = berth_state::State::open(dir.path())?;
    let auth =
        berth_auth::AuthService::open_with_cost(&state, common::config(Mode::Basic, false), 4)?;
    let fixture = conformance::FIXTURE;
    auth.users().add(
        fixture.user,
        fixture.password,
        &[format!("pull,push:{}", fixture.allowed)],
    )?;
    let native = auth.native();
    assert_eq!(
        conformance::run(native.as_ref(), native.as_ref()),
        Vec::<String>::new()
    );
    Ok(())
}

/// Counts the authentications it is asked for.
struct Counting(std::sync::atomic::AtomicUsize);

impl Authenticator for Counting {
    fn authenticate(&self, c: &Credentials) -> Result<Principal, AuthError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Carol.authenticate(c)
    }
}

impl Authorizer for Counting {
    fn authorize(&self, p: &Principal, action: Action, repo: &str) -> Decision {
        Carol.authorize(p, action, repo)
    }
}

#[test]
fn good_credentials_are_asked_once_bad_ones_every_time() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    let provider = Arc::new(Counting(Default::default()));
    e.auth.set_provider(Some(provider.clone()));
    for _ in 0..5 {
        assert!(
            e.auth
                .check(None, Some(&basic("carol", "c-pw")), &push("team/a"))
                .is_ok()
        );
    }
    assert_eq!(provider.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    for _ in 0..3 {
        assert!(
            e.auth
                .check(None, Some(&basic("carol", "bad")), &push("team/a"))
                .is_err()
        );
    }
    assert_eq!(provider.0.load(std::sync::atomic::Ordering::SeqCst), 4);
    // A new provider (a reload) starts with an empty cache.
    e.auth.set_provider(Some(provider.clone()));
    assert!(
        e.auth
            .check(None, Some(&basic("carol", "c-pw")), &push("team/a"))
            .is_ok()
    );
    assert_eq!(provider.0.load(std::sync::atomic::Ordering::SeqCst), 5);
    Ok(())
}
