//! The native implementation passes the shared Authenticator/Authorizer contract.

mod common;

use berth_auth::conformance::{self, FIXTURE};
use berth_auth::{AuthService, Mode};
use common::config;

#[test]
fn native_service_keeps_the_contract() -> anyhow::Result<()> {
    for mode in [Mode::Basic, Mode::Token] {
        let dir = tempfile::tempdir()?;
        let state = berth_state::State::open(dir.path())?;
        let auth = AuthService::open_with_cost(&state, config(mode, false), 4)?;
        let grant = format!("pull,push:{}", FIXTURE.allowed);
        auth.users().add(FIXTURE.user, FIXTURE.password, &[grant])?;
        assert_eq!(conformance::run(&auth, &auth), Vec::<String>::new());
    }
    Ok(())
}

#[test]
fn the_contract_catches_a_broken_implementation() {
    use berth_auth::{AuthError, Authenticator, Authorizer, Credentials, Decision, Principal};
    struct AllowAll;
    impl Authenticator for AllowAll {
        fn authenticate(&self, c: &Credentials) -> Result<Principal, AuthError> {
            Ok(match c {
                Credentials::Basic { user, .. } => Principal::user(user.clone()),
                _ => Principal::anonymous(),
            })
        }
    }
    impl Authorizer for AllowAll {
        fn authorize(&self, _: &Principal, _: berth_auth::Action, _: &str) -> Decision {
            Decision::Allow
        }
    }
    let broken = conformance::run(&AllowAll, &AllowAll);
    assert!(
        broken.contains(&"a wrong password is refused".to_string()),
        "{broken:?}"
    );
    assert!(
        broken.contains(&"anonymous may not push".to_string()),
        "{broken:?}"
    );
}
