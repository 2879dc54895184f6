//! `AuthService::check_control`: the control API on TCP, by class of
//! operation, with native users; registry tokens refused; the failed-login
//! limit shared with the registry.

mod common;

use std::net::IpAddr;

use berth_auth::{Access, Action, AuthConfig, Denial, Mode, Principal};
use common::{basic, bearer, config, env, env_with};

const LIST: (Action, &str) = (Action::Pull, "GET /v1/containers");
const RUN: (Action, &str) = (Action::Admin, "POST /v1/containers");
const STOP: (Action, &str) = (Action::Push, "POST /v1/containers/{id}/stop");
const RM: (Action, &str) = (Action::Delete, "DELETE /v1/containers/{id}");

fn client() -> Option<IpAddr> {
    "192.0.2.10".parse().ok()
}

#[test]
fn native_grants_decide_by_class() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    e.auth.users().add("viewer", "v-pw", &["control:read"])?;
    e.auth.users().add("operator", "o-pw", &["control:write"])?;
    let check = |user: &str, password: &str, (action, op): (Action, &str)| {
        e.auth
            .check_control(client(), Some(&basic(user, password)), action, op)
    };
    for op in [LIST, STOP, RM, RUN] {
        assert_eq!(check("root", "root-pw", op)?, Principal::user("root"));
    }
    assert!(check("viewer", "v-pw", LIST).is_ok());
    for op in [STOP, RM, RUN] {
        let denied = check("viewer", "v-pw", op);
        assert!(matches!(&denied, Err(Denial::Denied { .. })), "{denied:?}");
    }
    assert!(check("operator", "o-pw", LIST).is_ok());
    assert!(check("operator", "o-pw", STOP).is_ok());
    assert!(check("operator", "o-pw", RM).is_ok());
    let Err(Denial::Denied { message }) = check("operator", "o-pw", RUN) else {
        panic!("control:write must not run containers");
    };
    assert!(
        message.contains("POST /v1/containers") && message.contains("admin"),
        "{message}"
    );
    // Repository grants, even on everything, open nothing here.
    for (user, password) in [("all", "all-pw"), ("alice", "alice-pw")] {
        let denied = check(user, password, LIST);
        assert!(matches!(&denied, Err(Denial::Denied { .. })), "{denied:?}");
    }
    Ok(())
}

#[test]
fn registry_tokens_are_refused_whatever_they_carry() -> anyhow::Result<()> {
    let e = env(Mode::Token, false)?;
    let catalog = e.auth.issue_token(
        None,
        Some(&basic("root", "root-pw")),
        Some("berth"),
        &["registry:catalog:*".to_string()],
        None,
    )?;
    let push = e.auth.issue_token(
        None,
        Some(&basic("alice", "alice-pw")),
        Some("berth"),
        &["repository:team/app:pull,push".to_string()],
        None,
    )?;
    // The tokens are good where they belong.
    e.auth
        .check(None, Some(&bearer(&catalog.token)), &[Access::catalog()])?;
    for token in [&catalog.token, &push.token] {
        for (action, op) in [LIST, RUN] {
            let refused = e
                .auth
                .check_control(client(), Some(&bearer(token)), action, op);
            let Err(Denial::Unauthorized { message, challenge }) = refused else {
                panic!("a registry token opened {op}: {refused:?}");
            };
            assert!(message.contains("token"), "{message}");
            assert!(challenge.starts_with("Basic"), "{challenge}");
        }
    }
    Ok(())
}

#[test]
fn concurrent_wrong_passwords_get_no_more_checks_than_the_limit() -> anyhow::Result<()> {
    let e = env_with(AuthConfig {
        max_failed_logins: 5,
        failed_login_window_secs: 60,
        ..config(Mode::Basic, false)
    })?;
    let need = [Access::repository("team/app", &[Action::Pull])];
    // Many guesses at once from one client: each must take its place in
    // the limit before its password is checked, not after.
    const GUESSES: usize = 32;
    let start = std::sync::Barrier::new(GUESSES);
    let answers: Vec<_> = std::thread::scope(|s| {
        let guesses: Vec<_> = (0..GUESSES)
            .map(|i| {
                let (e, need, start) = (&e, &need, &start);
                s.spawn(move || {
                    start.wait();
                    e.auth
                        .check(client(), Some(&basic("alice", &format!("guess-{i}"))), need)
                })
            })
            .collect();
        guesses
            .into_iter()
            .map(|g| g.join().map_err(|_| anyhow::anyhow!("a guess panicked")))
            .collect()
    });
    let mut checked = 0;
    for answer in answers {
        match answer? {
            Err(Denial::Unauthorized { .. }) => checked += 1,
            Err(Denial::TooManyRequests { .. }) => {}
            other => panic!("a wrong password got {other:?}"),
        }
    }
    assert!(
        checked <= 5,
        "{checked} of {GUESSES} concurrent guesses were checked"
    );
    // The client is locked out afterwards, the right password included.
    let right = e
        .auth
        .check(client(), Some(&basic("alice", "alice-pw")), &need);
    assert_eq!(right.map_err(|d| d.status()), Err(429));
    Ok(())
}

#[test]
fn a_right_password_sent_on_many_requests_at_once_is_never_throttled() -> anyhow::Result<()> {
    let e = env_with(AuthConfig {
        max_failed_logins: 5,
        failed_login_window_secs: 60,
        ..config(Mode::Basic, false)
    })?;
    let need = [Access::repository("team/app", &[Action::Pull])];
    // One login first (as a client's first request is), then the same
    // right password on many requests at once: a push's parallel uploads,
    // or a load test, from one address. None of them is a guess.
    let first = e
        .auth
        .check(client(), Some(&basic("alice", "alice-pw")), &need);
    assert!(first.is_ok(), "{first:?}");
    const REQUESTS: usize = 32;
    let start = std::sync::Barrier::new(REQUESTS);
    let answers: Vec<_> = std::thread::scope(|s| {
        let requests: Vec<_> = (0..REQUESTS)
            .map(|_| {
                let (e, need, start) = (&e, &need, &start);
                s.spawn(move || {
                    start.wait();
                    e.auth
                        .check(client(), Some(&basic("alice", "alice-pw")), need)
                })
            })
            .collect();
        requests
            .into_iter()
            .map(|r| r.join().map_err(|_| anyhow::anyhow!("a request panicked")))
            .collect()
    });
    for answer in answers {
        let answer = answer?;
        assert!(answer.is_ok(), "a right password got {answer:?}");
    }
    Ok(())
}

#[test]
fn failed_logins_lock_the_client_out_of_registry_and_control_alike() -> anyhow::Result<()> {
    let e = env_with(AuthConfig {
        max_failed_logins: 5,
        failed_login_window_secs: 2,
        ..config(Mode::Basic, false)
    })?;
    let need = [Access::repository("team/app", &[Action::Pull])];
    for i in 0..5 {
        let r = e.auth.check(
            client(),
            Some(&basic("alice", &format!("guess-{i}"))),
            &need,
        );
        assert!(matches!(r, Err(Denial::Unauthorized { .. })), "{i}: {r:?}");
    }
    let r = e
        .auth
        .check(client(), Some(&basic("alice", "guess-5")), &need);
    let Err(Denial::TooManyRequests {
        retry_after_secs, ..
    }) = r
    else {
        panic!("the 6th guess was not throttled: {r:?}");
    };
    assert!((1..=2).contains(&retry_after_secs), "{retry_after_secs}");
    // The right password is refused too, on the registry, the token
    // endpoint and the control API, for any user from this client...
    let right = e
        .auth
        .check(client(), Some(&basic("alice", "alice-pw")), &need);
    assert_eq!(right.map_err(|d| d.status()), Err(429));
    let token = e
        .auth
        .issue_token(client(), Some(&basic("root", "root-pw")), None, &[], None);
    assert_eq!(token.map(|_| ()).map_err(|d| d.status()), Err(429));
    let control = e
        .auth
        .check_control(client(), Some(&basic("root", "root-pw")), LIST.0, LIST.1);
    assert_eq!(control.map_err(|d| d.status()), Err(429));
    // ...but not from another client.
    let other: Option<IpAddr> = "192.0.2.11".parse().ok();
    assert!(
        e.auth
            .check(other, Some(&basic("alice", "alice-pw")), &need)
            .is_ok()
    );
    // Once the window has passed the right password works again.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(
        e.auth
            .check(client(), Some(&basic("alice", "alice-pw")), &need)
            .is_ok()
    );
    Ok(())
}

#[test]
fn without_an_address_failures_count_per_user() -> anyhow::Result<()> {
    let e = env_with(AuthConfig {
        max_failed_logins: 3,
        ..config(Mode::Basic, false)
    })?;
    for _ in 0..3 {
        let _ = e.auth.check(None, Some(&basic("bob", "nope")), &[]);
    }
    let bob = e.auth.check(None, Some(&basic("bob", "bob:pw")), &[]);
    assert_eq!(bob.map_err(|d| d.status()), Err(429));
    assert!(
        e.auth
            .check(None, Some(&basic("alice", "alice-pw")), &[])
            .is_ok()
    );
    Ok(())
}
