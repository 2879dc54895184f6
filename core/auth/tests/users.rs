//! User management and password verification on a real state database.

mod common;

use std::time::{Duration, Instant};

use berth_auth::{AuthError, Mode, UserStore};
use common::env;

#[test]
fn verifies_good_and_refuses_bad_passwords() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    let u = e.auth.users();
    assert_eq!(u.verify("alice", "alice-pw")?.name, "alice");
    assert!(matches!(
        u.verify("alice", "wrong"),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        u.verify("alice", ""),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        u.verify("nobody", "alice-pw"),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        u.verify("Alice", "alice-pw"),
        Err(AuthError::InvalidCredentials)
    ));
    // A ':' in the password survives.
    assert_eq!(u.verify("bob", "bob:pw")?.name, "bob");
    Ok(())
}

#[test]
fn cache_never_accepts_a_wrong_password_and_forgets_on_change() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    let u = e.auth.users();
    u.verify("alice", "alice-pw")?; // now cached
    assert!(u.verify("alice", "alice-pw2").is_err());
    assert!(u.verify("bob", "alice-pw").is_err(), "cache is per user");
    u.set_password("alice", "new-pw")?;
    assert!(
        u.verify("alice", "alice-pw").is_err(),
        "old password must stop working at once"
    );
    assert!(u.verify("alice", "new-pw").is_ok());
    u.remove("alice")?;
    assert!(
        u.verify("alice", "new-pw").is_err(),
        "removed user must stop working"
    );
    Ok(())
}

#[test]
fn cache_makes_repeated_verification_cheap() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = berth_state::State::open(dir.path())?;
    let u = UserStore::open(&state, 10)?;
    u.add("slow", "pw", &["pull:*"])?;
    let t = Instant::now();
    u.verify("slow", "pw")?;
    let first = t.elapsed();
    let t = Instant::now();
    for _ in 0..10 {
        u.verify("slow", "pw")?;
    }
    let ten_cached = t.elapsed();
    assert!(
        ten_cached < first,
        "10 cached verifications took {ten_cached:?}, one bcrypt {first:?}"
    );
    // With the cache off every verification pays bcrypt again.
    let uncached = UserStore::open(&state, 10)?.with_cache_ttl(Duration::ZERO);
    uncached.verify("slow", "pw")?;
    let t = Instant::now();
    uncached.verify("slow", "pw")?;
    assert!(t.elapsed() > ten_cached / 10);
    Ok(())
}

#[test]
fn manages_users() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    let u = e.auth.users();
    assert!(matches!(
        u.add("alice", "x", &["pull:*"]),
        Err(AuthError::UserExists(_))
    ));
    for bad in ["", "UPPER", "a b", "a/b", &"x".repeat(65)] {
        assert!(
            matches!(
                u.add(bad, "x", &["pull:*"]),
                Err(AuthError::InvalidUserName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        u.add("carol", "x", &["fly:*"]),
        Err(AuthError::InvalidGrant { .. })
    ));
    assert!(matches!(
        u.add("carol", "", &["pull:*"]),
        Err(AuthError::EmptyPassword)
    ));
    assert!(matches!(
        u.add("carol", &"p".repeat(73), &["pull:*"]),
        Err(AuthError::PasswordTooLong(73))
    ));
    // bcrypt reads 72 bytes with the terminating NUL: 72 would be cut.
    assert!(matches!(
        u.add("carol", &"p".repeat(72), &["pull:*"]),
        Err(AuthError::PasswordTooLong(72))
    ));
    assert!(matches!(
        u.add("carol", "ab\0ab", &["pull:*"]),
        Err(AuthError::PasswordHasNul)
    ));
    assert!(!u.exists("carol")?, "failed adds leave nothing behind");
    u.add("carol.d-1_x", "pw", &["pull:*"])?;
    let names: Vec<String> = u.list()?.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["alice", "all", "bob", "carol.d-1_x", "root"]);
    let listed = serde_json::to_string(&u.list()?)?;
    assert!(
        !listed.contains("$2"),
        "list must not show hashes: {listed}"
    );
    assert!(matches!(u.remove("nobody"), Err(AuthError::NoSuchUser(_))));
    u.set_grants("carol.d-1_x", &["push:x"])?;
    let carol = u.list()?.into_iter().find(|i| i.name == "carol.d-1_x");
    assert_eq!(carol.map(|c| c.grants), Some(vec!["push:x".to_string()]));
    Ok(())
}

#[test]
fn users_survive_reopening() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let state = berth_state::State::open(dir.path())?;
        UserStore::open(&state, 4)?.add("dave", "pw", &["pull:*"])?;
    }
    let state = berth_state::State::open(dir.path())?;
    assert!(UserStore::open(&state, 4)?.verify("dave", "pw").is_ok());
    assert!(matches!(
        UserStore::open(&state, 3),
        Err(AuthError::InvalidCost(3))
    ));
    Ok(())
}

/// The median of `n` timings of `f`.
fn median(n: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[n / 2]
}

#[test]
fn a_long_password_costs_a_full_check_so_names_cannot_be_probed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = berth_state::State::open(dir.path())?;
    // Cost 8: slow enough to stand out from noise, fast enough for a test.
    let u = UserStore::open(&state, 8)?;
    let max = "x".repeat(71);
    u.add("known", &max, &["pull:*"])?;
    assert_eq!(u.verify("known", &max)?.name, "known", "71 bytes work");
    for long in ["x".repeat(72), "x".repeat(80), "x".repeat(4096)] {
        // The first 71 bytes are right: only the length makes it wrong.
        assert!(matches!(
            u.verify("known", &long),
            Err(AuthError::InvalidCredentials)
        ));
    }
    let long = "y".repeat(80);
    let wrong = median(5, || {
        let _ = u.verify("known", "wrong");
    });
    let known_long = median(5, || {
        let _ = u.verify("known", &long);
    });
    let unknown_long = median(5, || {
        let _ = u.verify("unknown", &long);
    });
    for (what, took) in [("known user", known_long), ("unknown user", unknown_long)] {
        assert!(
            took * 2 >= wrong,
            "an 80-byte password for the {what} took {took:?}, a wrong one {wrong:?}: \
             the time tells whether the user exists"
        );
    }
    Ok(())
}

#[test]
fn a_nul_in_the_password_never_matches() -> anyhow::Result<()> {
    let e = env(Mode::Basic, false)?;
    // bcrypt repeats the key: "ab\0ab" would hash as "ab".
    e.auth.users().add("short", "ab", &["pull:*"])?;
    assert!(e.auth.users().verify("short", "ab").is_ok());
    assert!(matches!(
        e.auth.users().verify("short", "ab\0ab"),
        Err(AuthError::InvalidCredentials)
    ));
    Ok(())
}
