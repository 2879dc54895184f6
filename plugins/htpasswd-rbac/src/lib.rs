//! `htpasswd-rbac` — an auth provider: users and bcrypt passwords from an htpasswd file,
//! permissions from rules in the configuration.
//!
//! Authentication: basic credentials are checked against the file (a wrong password is
//! rejected; a user the file does not know is left to the next provider: abstain); bearer
//! tokens are left to the next provider; no credentials give the anonymous principal.
//! Successful verifications are cached in the instance (bcrypt costs ~50 ms per check, and
//! berth reuses instances) under a SHA-256 of user and password, never the password itself;
//! the file is re-read, and the cache dropped, when its modification time changes.
//!
//! Authorisation: a principal may do what a rule naming it (or one of its groups) grants;
//! anonymous clients what an `anonymous` rule grants; anything else is denied with a reason.
//! Repository patterns are globs (`team/*`, `*`); for `admin` actions the pattern is matched
//! against the operation name (`catalog`, `gc`). The control API on TCP asks with target kind
//! `control` and the operation as name (`GET /v1/containers/{id}`): `control` patterns of a
//! rule answer for it, with the action telling the operation's class (`pull` read-only,
//! `push` changes, `delete` removes, `admin` can give root on the host, and implies the rest).
//! Repository rules never open the control API, except those granting `admin`, whose patterns
//! are matched against the operation's path (`/v1/*`), as before `control` existed.
//!
//! Configuration (`[plugin.config]`):
//! - `htpasswd` (string, required): guest path of the file, e.g. `/auth/htpasswd`. Grant its
//!   directory read-only (e.g. host `/etc/berth/auth` as guest `/auth`). Only bcrypt entries
//!   (`htpasswd -B`) are accepted; others are ignored with a warning.
//! - `groups` (table of lists): group name → user names.
//! - `rules` (list of tables): `{ users = [...], groups = [...], repositories = "team/*" or
//!   [...], control = "*" or [...], actions = ["pull", "push", "delete", "admin"] }`, with
//!   `repositories`, `control` or both.
//! - `anonymous` (list of tables): `{ repositories = "public/*", actions = ["pull"] }`.
//!
//! ```toml
//! [[plugin]]
//! name = "htpasswd-rbac"
//! kind = "auth-provider"
//! source = "htpasswd_rbac.wasm"
//! [plugin.config]
//! htpasswd = "/auth/htpasswd"
//! groups = { team = ["bob", "carol"] }
//! rules = [
//!   { users = ["alice"], repositories = "alice/*", actions = ["pull", "push", "delete"] },
//!   { groups = ["team"], repositories = "team/*", actions = ["pull", "push"] },
//!   { groups = ["team"], control = "*", actions = ["pull"] },   # read-only control API
//!   { users = ["alice"], control = "*", actions = ["admin"] },  # all of it
//! ]
//! anonymous = [{ repositories = "public/*", actions = ["pull"] }]
//! [plugin.grants]
//! dirs = [{ host = "/etc/berth/auth", guest = "/auth", access = "ro" }]
//! ```

pub mod htpasswd;
pub mod rules;

use std::cell::OnceCell;

use berth_plugin_sdk::prelude::*;

use htpasswd::{Check, Htpasswd};
use rules::{Config, Policy};

struct Loaded {
    file: Htpasswd,
    policy: Policy,
}

#[derive(Default)]
struct HtpasswdRbac {
    loaded: OnceCell<Result<Loaded, String>>,
}

impl HtpasswdRbac {
    fn loaded(&self) -> Result<&Loaded, &str> {
        self.loaded
            .get_or_init(|| {
                let config: Config =
                    berth_plugin_sdk::config().map_err(|err| format!("htpasswd-rbac: {err}"))?;
                let file = Htpasswd::new(&config.htpasswd);
                let policy = Policy::new(config)
                    .map_err(|err| format!("htpasswd-rbac: invalid configuration: {err}"))?;
                Ok(Loaded { file, policy })
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// The answer for basic credentials, given the file and policy.
pub fn authenticate_basic(
    file: &Htpasswd,
    policy: &Policy,
    user: &str,
    password: &str,
) -> AuthnResult {
    match file.check(user, password) {
        Ok(Check::Good) => {
            AuthnResult::Authenticated(Principal::user(user, policy.groups_of(user)))
        }
        Ok(Check::WrongPassword) => {
            AuthnResult::Rejected(format!("wrong password for user {user:?}"))
        }
        Ok(Check::UnknownUser) => AuthnResult::Abstain,
        Err(err) => {
            // Fail closed, and tell the operator why: the client only sees a refusal.
            berth_plugin_sdk::error!("{err}");
            AuthnResult::Rejected(
                "authentication is unavailable (the server's password file cannot be read)"
                    .to_owned(),
            )
        }
    }
}

impl AuthProvider for HtpasswdRbac {
    fn authenticate(&self, credentials: Credentials) -> AuthnResult {
        match credentials {
            Credentials::Anonymous => AuthnResult::Authenticated(Principal::anonymous()),
            Credentials::Bearer(_) => AuthnResult::Abstain,
            Credentials::Basic(basic) => match self.loaded() {
                Ok(loaded) => authenticate_basic(
                    &loaded.file,
                    &loaded.policy,
                    &basic.username,
                    &basic.password,
                ),
                Err(err) => {
                    berth_plugin_sdk::error!("{err}");
                    AuthnResult::Rejected(
                        "authentication is unavailable (the auth plugin is misconfigured)"
                            .to_owned(),
                    )
                }
            },
        }
    }

    fn authorize(&self, who: &Principal, action: Action, what: &Target) -> Decision {
        match self.loaded() {
            Ok(loaded) => loaded.policy.authorize(who, action, what),
            Err(err) => Decision::Deny(err.to_owned()),
        }
    }
}

berth_plugin_sdk::export_auth!(HtpasswdRbac);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let hash = bcrypt::hash("pw", 4).unwrap();
        std::fs::write(&path, format!("bob:{hash}\n")).unwrap();
        let config = format!(
            r#"{{"htpasswd":{path:?},"groups":{{"team":["bob"]}},
                "rules":[{{"groups":["team"],"repositories":"team/*","actions":["pull"]}}]}}"#,
            path = path.display().to_string()
        );
        let policy = Policy::new(berth_plugin_sdk::parse_config(&config).unwrap()).unwrap();
        let file = Htpasswd::new(&path);
        let AuthnResult::Authenticated(bob) = authenticate_basic(&file, &policy, "bob", "pw")
        else {
            panic!("bob rejected");
        };
        assert_eq!(bob.name, "bob");
        assert_eq!(bob.groups, vec!["team"]);
        assert!(!bob.anonymous);
        let AuthnResult::Rejected(message) = authenticate_basic(&file, &policy, "bob", "nope")
        else {
            panic!("wrong password accepted");
        };
        assert!(message.contains("wrong password"), "{message}");
        assert!(matches!(
            authenticate_basic(&file, &policy, "eve", "pw"),
            AuthnResult::Abstain
        ));
    }
}
