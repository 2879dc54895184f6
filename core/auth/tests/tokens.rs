//! Docker's token flow: the token endpoint and bearer tokens on `/v2/`.

mod common;

use std::time::Duration;

use berth_auth::{Access, Action, AuthService, Denial, Mode, TokenForm};
use common::{basic, bearer, config, env, env_with};

/// The token with `from` replaced by `to` in its payload, signature kept.
fn other_payload(token: &str, from: &str, to: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap_or_default();
    let payload = String::from_utf8_lossy(&payload).replace(from, to);
    assert!(payload.contains(to));
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload),
        parts[2]
    )
}

fn scope(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

fn push(repo: &str) -> Vec<Access> {
    vec![Access::repository(repo, &[Action::Pull, Action::Push])]
}

fn pull(repo: &str) -> Vec<Access> {
    vec![Access::repository(repo, &[Action::Pull])]
}

#[test]
fn issue_and_use_a_token() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    let r = e.auth.issue_token(
        None,
        Some(&basic("alice", "alice-pw")),
        Some("berth"),
        &scope("repository:team/app:pull,push"),
        None,
    )?;
    assert_eq!(r.token, r.access_token);
    assert_eq!(r.expires_in, 300);
    assert_eq!(r.issued_at.len(), "2024-05-01T12:00:00Z".len());
    assert!(r.issued_at.ends_with('Z'));
    let json = serde_json::to_value(&r)?;
    for field in ["token", "access_token", "expires_in", "issued_at"] {
        assert!(json.get(field).is_some(), "missing {field} in {json}");
    }

    let p = e
        .auth
        .check(None, Some(&bearer(&r.token)), &push("team/app"))?;
    assert_eq!(p.name.as_deref(), Some("alice"));
    // The token is for team/app only, although alice may push elsewhere in team/.
    let other = e
        .auth
        .check(None, Some(&bearer(&r.token)), &push("team/other"));
    match other {
        Err(Denial::Unauthorized { challenge, .. }) => assert!(
            challenge.ends_with(
                ",scope=\"repository:team/other:pull,push\",error=\"insufficient_scope\""
            ),
            "{challenge}"
        ),
        other => anyhow::bail!("expected 401 insufficient_scope, got {other:?}"),
    }
    Ok(())
}

#[test]
fn token_carries_only_what_is_permitted() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    let r = e.auth.issue_token(
        None,
        Some(&basic("bob", "bob:pw")),
        None,
        &[
            "repository:lib/x:pull,push".to_string(),
            "registry:catalog:*".to_string(),
        ],
        None,
    )?;
    let t = e.auth.signer().verify(&r.token)?;
    assert_eq!(t.subject.as_deref(), Some("bob"));
    assert_eq!(t.access, pull("lib/x"), "bob may pull only, and no catalog");
    assert!(
        e.auth
            .check(None, Some(&bearer(&r.token)), &pull("lib/x"))
            .is_ok()
    );
    assert!(matches!(
        e.auth.check(None, Some(&bearer(&r.token)), &push("lib/x")),
        Err(Denial::Denied { .. })
    ));

    let admin = e.auth.issue_token(
        None,
        Some(&basic("root", "root-pw")),
        None,
        &scope("registry:catalog:* repository:a:delete"),
        None,
    )?;
    let t = e.auth.signer().verify(&admin.token)?;
    assert!(t.access.contains(&Access::catalog()));
    assert!(
        t.access
            .contains(&Access::repository("a", &[Action::Delete]))
    );
    assert!(
        e.auth
            .check(None, Some(&bearer(&admin.token)), &[Access::catalog()])
            .is_ok()
    );
    Ok(())
}

#[test]
fn anonymous_tokens_follow_anonymous_pull() -> anyhow::Result<()> {
    let on = env(Mode::Token, true)?;
    let r = on.auth.issue_token(
        None,
        None,
        Some("berth"),
        &scope("repository:a/b:pull,push"),
        None,
    )?;
    let t = on.auth.signer().verify(&r.token)?;
    assert_eq!(t.subject, None);
    assert_eq!(t.access, pull("a/b"));

    let off = env(Mode::Token, false)?;
    let r = off
        .auth
        .issue_token(None, None, None, &scope("repository:a/b:pull"), None)?;
    assert!(off.auth.signer().verify(&r.token)?.access.is_empty());
    assert!(matches!(
        off.auth.check(None, Some(&bearer(&r.token)), &pull("a/b")),
        Err(Denial::Unauthorized { .. })
    ));
    Ok(())
}

#[test]
fn wrong_password_or_service_at_the_token_endpoint() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    let bad = e
        .auth
        .issue_token(None, Some(&basic("alice", "x")), None, &[], None);
    assert_eq!(bad.err().map(|d| d.status()), Some(401));
    let svc = e.auth.issue_token(None, None, Some("other"), &[], None);
    assert_eq!(svc.err().map(|d| d.status()), Some(400));
    let scope = e
        .auth
        .issue_token(None, None, None, &scope("repository:BAD:pull"), None);
    assert_eq!(scope.err().map(|d| d.status()), Some(400));
    let with_token = e
        .auth
        .issue_token(None, Some("Bearer abc"), None, &[], None);
    assert_eq!(with_token.err().map(|d| d.status()), Some(400));
    Ok(())
}

#[test]
fn expired_forged_and_foreign_tokens_are_refused() -> anyhow::Result<()> {
    let mut cfg = config(Mode::Token, false);
    cfg.token_ttl_secs = 1;
    let e = env_with(cfg)?;
    let r = e.auth.issue_token(
        None,
        Some(&basic("alice", "alice-pw")),
        None,
        &scope("repository:team/app:pull"),
        None,
    )?;
    assert!(
        e.auth
            .check(None, Some(&bearer(&r.token)), &pull("team/app"))
            .is_ok()
    );

    // Forged: same claims, first signature character changed (the last
    // one may hold only padding bits).
    let sig_start = r.token.rfind('.').map_or(0, |i| i + 1);
    let mut forged = r.token.clone();
    let first = forged.remove(sig_start);
    forged.insert(sig_start, if first == 'A' { 'B' } else { 'A' });
    // Forged the other way: claims for a repository alice was not given,
    // with the original signature.
    let wider = other_payload(&r.token, "team/app", "team/secret");
    let refused = |header: &str| match e.auth.check(None, Some(header), &pull("team/app")) {
        Err(Denial::Unauthorized { challenge, .. }) => {
            challenge.contains("error=\"invalid_token\"")
        }
        _ => false,
    };
    assert!(refused(&bearer(&forged)));
    assert!(refused(&bearer("not.a.jwt")));
    assert!(refused(&bearer(&wider)));

    // Same key (same state), other audience.
    let mut other_cfg = config(Mode::Token, false);
    other_cfg.service = "other".to_string();
    let other = AuthService::open_with_cost(&e.state, other_cfg, 4)?;
    let foreign = other.issue_token(
        None,
        Some(&basic("alice", "alice-pw")),
        Some("other"),
        &scope("repository:team/app:pull"),
        None,
    )?;
    assert!(
        other
            .check(None, Some(&bearer(&foreign.token)), &pull("team/app"))
            .is_ok()
    );
    assert!(refused(&bearer(&foreign.token)));

    std::thread::sleep(Duration::from_millis(2100));
    assert!(refused(&bearer(&r.token)), "expired token must be refused");
    Ok(())
}

#[test]
fn tokens_survive_reopening_the_state() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    let r = e.auth.issue_token(
        None,
        Some(&basic("alice", "alice-pw")),
        None,
        &scope("repository:team/app:pull"),
        None,
    )?;
    let path = e.dir.path().join("state");
    let dir = e.dir;
    drop(e.auth);
    drop(e.state);
    let state = berth_state::State::open(&path)?;
    let auth = AuthService::open(&state, config(Mode::Token, false))?;
    assert!(
        auth.check(None, Some(&bearer(&r.token)), &pull("team/app"))
            .is_ok()
    );
    drop(dir);
    Ok(())
}

#[test]
fn post_password_grant() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    let form = |grant: &str, password: &str| TokenForm {
        grant_type: Some(grant.to_string()),
        username: Some("alice".to_string()),
        password: Some(password.to_string()),
        scope: Some("repository:team/app:pull,push".to_string()),
        service: Some("berth".to_string()),
        client_id: Some("containerd-client".to_string()),
        ..TokenForm::default()
    };
    let r = e
        .auth
        .issue_token(None, None, None, &[], Some(form("password", "alice-pw")))?;
    assert!(
        e.auth
            .check(None, Some(&bearer(&r.access_token)), &push("team/app"))
            .is_ok()
    );

    let wrong = e
        .auth
        .issue_token(None, None, None, &[], Some(form("password", "x")));
    assert_eq!(wrong.err().map(|d| d.status()), Some(401));
    let refresh = TokenForm {
        grant_type: Some("refresh_token".to_string()),
        refresh_token: Some("whatever".to_string()),
        ..TokenForm::default()
    };
    let r = e.auth.issue_token(None, None, None, &[], Some(refresh));
    assert!(matches!(r, Err(Denial::BadRequest { .. })), "{r:?}");
    let none = e
        .auth
        .issue_token(None, None, None, &[], Some(TokenForm::default()));
    assert_eq!(none.err().map(|d| d.status()), Some(400));
    Ok(())
}
