//! The contract every [`Authenticator`] + [`Authorizer`] pair must keep,
//! native or Wasm plugin, as one function the implementation's tests call.
//!
//! Set the implementation up with the [`FIXTURE`]: a user `alice` with
//! password `alice-pw` who may pull and push `team/app` but nothing on
//! `other/app`, no admin rights, no control rights, and anonymous pull off. Then
//! `assert_eq!(conformance::run(&imp, &imp), Vec::<String>::new())`.

use crate::{Action, Authenticator, Authorizer, CATALOG, Credentials, Decision, Principal};

/// The users and rights an implementation under test must be configured with.
pub struct Fixture {
    pub user: &'static str,
    pub password: &'static str,
    /// The user may pull and push here.
    pub allowed: &'static str,
    /// The user may do nothing here.
    pub forbidden: &'static str,
}

pub const FIXTURE: Fixture = Fixture {
    user: "alice",
    password: "alice-pw",
    allowed: "team/app",
    forbidden: "other/app",
};

/// Run every case; returns the broken ones, empty when the contract holds.
pub fn run(authn: &dyn Authenticator, authz: &dyn Authorizer) -> Vec<String> {
    let f = &FIXTURE;
    let mut broken = Vec::new();
    let mut expect = |ok: bool, case: &str| {
        if !ok {
            broken.push(case.to_string());
        }
    };
    let basic = |user: &str, password: &str| Credentials::Basic {
        user: user.to_string(),
        password: password.to_string(),
    };

    expect(
        matches!(authn.authenticate(&Credentials::Anonymous), Ok(p) if p.is_anonymous()),
        "anonymous credentials yield an anonymous principal",
    );
    expect(
        authn
            .authenticate(&basic(f.user, "not-the-password"))
            .is_err(),
        "a wrong password is refused",
    );
    expect(
        authn.authenticate(&basic(f.user, "")).is_err(),
        "an empty password is refused",
    );
    expect(
        authn
            .authenticate(&basic("no-such-user", f.password))
            .is_err(),
        "an unknown user is refused",
    );
    expect(
        authn
            .authenticate(&Credentials::Bearer("not-a-token".to_string()))
            .is_err(),
        "a malformed bearer token is refused",
    );
    let user = match authn.authenticate(&basic(f.user, f.password)) {
        Ok(p) => p,
        Err(_) => {
            expect(false, "the fixture user's password is accepted");
            return broken;
        }
    };
    expect(
        user.name.as_deref() == Some(f.user),
        "the principal carries the user's name",
    );
    let allows = |p: &Principal, a: Action, r: &str| authz.authorize(p, a, r).is_allowed();
    expect(
        allows(&user, Action::Pull, f.allowed),
        "user may pull where granted",
    );
    expect(
        allows(&user, Action::Push, f.allowed),
        "user may push where granted",
    );
    expect(
        !allows(&user, Action::Push, f.forbidden),
        "user may not push where not granted",
    );
    expect(
        matches!(authz.authorize(&user, Action::Pull, f.forbidden), Decision::Deny(r) if !r.is_empty()),
        "a denial carries a reason",
    );
    expect(
        !allows(&user, Action::Admin, CATALOG),
        "repository rights do not imply admin",
    );
    expect(
        !authz
            .authorize_control(&user, Action::Pull, "GET /v1/containers")
            .is_allowed(),
        "repository rights do not open the control API",
    );
    let anon = Principal::anonymous();
    expect(
        !allows(&anon, Action::Pull, f.allowed),
        "anonymous may not pull when anonymous pull is off",
    );
    expect(
        !allows(&anon, Action::Push, f.allowed),
        "anonymous may not push",
    );
    broken
}
