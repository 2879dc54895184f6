//! `AuthService::check`: what the registry asks before each request.

mod common;

use berth_auth::{Access, Action, Credentials, Denial, Mode, Principal, parse_authorization};
use common::{REALM, basic, env};

fn pull(repo: &str) -> Vec<Access> {
    vec![Access::repository(repo, &[Action::Pull])]
}

fn push(repo: &str) -> Vec<Access> {
    vec![Access::repository(repo, &[Action::Pull, Action::Push])]
}

#[test]
fn parses_authorization_headers() -> anyhow::Result<()> {
    assert_eq!(parse_authorization(None)?, Credentials::Anonymous);
    assert_eq!(parse_authorization(Some("  "))?, Credentials::Anonymous);
    assert_eq!(
        parse_authorization(Some(&basic("bob", "a:b:c")))?,
        Credentials::Basic {
            user: "bob".into(),
            password: "a:b:c".into()
        }
    );
    let lower = basic("bob", "x").replacen("Basic", "basic", 1);
    assert!(matches!(
        parse_authorization(Some(&lower))?,
        Credentials::Basic { .. }
    ));
    assert_eq!(
        parse_authorization(Some("Bearer abc.def"))?,
        Credentials::Bearer("abc.def".into())
    );
    assert!(parse_authorization(Some("Basic !!!")).is_err());
    assert!(parse_authorization(Some("Basic Ym9i")).is_err(), "no colon");
    assert!(parse_authorization(Some("Bearer")).is_err());
    assert!(parse_authorization(Some("Digest x")).is_err());
    Ok(())
}

#[test]
fn basic_mode_applies_grants_and_globs() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    let alice = basic("alice", "alice-pw");
    let p = e.auth.check(None, Some(&alice), &push("team/app"))?;
    assert_eq!(p, Principal::user("alice"));
    assert!(
        e.auth
            .check(None, Some(&alice), &push("team/app/deep"))
            .is_ok()
    );
    assert!(e.auth.check(None, Some(&alice), &pull("other/x")).is_ok());
    let denied = e.auth.check(None, Some(&alice), &push("other/x"));
    assert!(matches!(&denied, Err(Denial::Denied { .. })), "{denied:?}");
    assert_eq!(denied.err().map(|d| d.status()), Some(403));
    let del = vec![Access::repository("team/app", &[Action::Delete])];
    assert!(matches!(
        e.auth.check(None, Some(&alice), &del),
        Err(Denial::Denied { .. })
    ));
    assert!(
        e.auth
            .check(None, Some(&basic("all", "all-pw")), &del)
            .is_ok()
    );
    Ok(())
}

#[test]
fn wrong_or_missing_credentials_get_the_basic_challenge() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    for header in [
        None,
        Some(basic("alice", "nope")),
        Some("Basic !!".to_string()),
    ] {
        match e.auth.check(None, header.as_deref(), &pull("team/app")) {
            Err(Denial::Unauthorized { challenge, .. }) => {
                assert_eq!(challenge, "Basic realm=\"berth\"")
            }
            other => panic!("{header:?}: expected 401, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn anonymous_pull_on_and_off() -> anyhow::Result<()> {
    for mode in [Mode::Basic, Mode::Token] {
        let off = env(mode, false)?;
        assert!(matches!(
            off.auth.check(None, None, &pull("a/b")),
            Err(Denial::Unauthorized { .. })
        ));
        let on = env(mode, true)?;
        assert_eq!(
            on.auth.check(None, None, &pull("a/b"))?,
            Principal::anonymous()
        );
        assert!(matches!(
            on.auth.check(None, None, &push("a/b")),
            Err(Denial::Unauthorized { .. })
        ));
        // Anonymous pull extends to users whose grants lack pull.
        on.auth.users().set_grants("bob", &["push:only/*"])?;
        assert!(
            on.auth
                .check(None, Some(&basic("bob", "bob:pw")), &pull("a/b"))
                .is_ok()
        );
    }
    Ok(())
}

#[test]
fn token_mode_challenge_has_docker_format() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    let Err(Denial::Unauthorized { challenge, .. }) = e.auth.check(None, None, &push("team/app"))
    else {
        anyhow::bail!("expected 401");
    };
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"{REALM}\",service=\"berth\",scope=\"repository:team/app:pull,push\""
        )
    );
    let Err(Denial::Unauthorized { challenge, .. }) = e.auth.check(None, None, &[]) else {
        anyhow::bail!("the /v2/ ping must challenge anonymous clients");
    };
    assert_eq!(
        challenge,
        format!("Bearer realm=\"{REALM}\",service=\"berth\"")
    );
    let Err(Denial::Unauthorized { challenge, .. }) =
        e.auth.check(None, None, &[Access::catalog()])
    else {
        anyhow::bail!("expected 401");
    };
    assert!(
        challenge.ends_with(",scope=\"registry:catalog:*\""),
        "{challenge}"
    );
    // Basic credentials work on /v2/ in token mode too.
    assert!(
        e.auth
            .check(None, Some(&basic("alice", "alice-pw")), &push("team/app"))
            .is_ok()
    );
    assert!(
        e.auth
            .check(None, Some(&basic("alice", "alice-pw")), &[])
            .is_ok()
    );
    Ok(())
}

#[test]
fn catalog_needs_admin() -> anyhow::Result<()> {
    let e = env(Mode::Basic, true)?;
    assert!(
        e.auth
            .check(None, Some(&basic("root", "root-pw")), &[Access::catalog()])
            .is_ok()
    );
    assert!(matches!(
        e.auth
            .check(None, Some(&basic("all", "all-pw")), &[Access::catalog()]),
        Err(Denial::Denied { .. })
    ));
    assert!(matches!(
        e.auth.check(None, None, &[Access::catalog()]),
        Err(Denial::Unauthorized { .. })
    ));
    // A repository that happens to be called "catalog" is just a repository.
    assert!(e.auth.check(None, None, &pull("catalog")).is_ok());
    Ok(())
}

#[test]
fn modes_parse_and_print() -> anyhow::Result<()> {
    for m in [Mode::None, Mode::Basic, Mode::Token] {
        assert_eq!(m.to_string().parse::<Mode>()?, m);
    }
    assert!("Token".parse::<Mode>().is_err());
    Ok(())
}

#[test]
fn mode_none_allows_everything() -> anyhow::Result<()> {
    let e = env(Mode::None, false)?;
    assert!(e.auth.check(None, None, &push("x")).is_ok());
    assert!(
        e.auth
            .check(None, Some("Garbage"), &[Access::catalog()])
            .is_ok()
    );
    Ok(())
}
