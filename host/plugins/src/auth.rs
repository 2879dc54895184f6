//! Auth-provider plugins as a chain implementing berth's
//! [`Authenticator`] and [`Authorizer`], with an optional native provider
//! in it. Semantics (from `wit/auth.wit`): for `authenticate`, the first
//! provider that does not abstain decides (anonymous credentials that all
//! abstain on give the anonymous principal; other credentials are
//! rejected); for `authorize`, the first `deny` wins, otherwise the first
//! `allow`; if every provider abstains the request is denied. A provider
//! that fails (trap, timeout, cut off) denies when it fails closed (the
//! default) and is skipped when it fails open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_auth::{Action, AuthError, Authenticator, Authorizer, Credentials, Decision, Principal};
use berth_policy::OnFailure;

use crate::bindings::auth::exports::berth::plugin::auth as wit;
use crate::plugin::{Exports, Plugin};
use crate::spec::Kind;
use crate::{PluginError, PluginManager, bounds};

/// A native provider (berth's own users and tokens) placed in the chain.
/// It never abstains, so the plugins after it are only asked when it is
/// not given a say: place it last to make it the fallback.
pub trait NativeAuth: Authenticator + Authorizer {}
impl<T: Authenticator + Authorizer> NativeAuth for T {}

enum Link {
    Plugin(Arc<Plugin>),
    Native(Arc<dyn NativeAuth>),
}

/// Groups remembered per user name between `authenticate` and
/// `authorize`, since berth's [`Principal`] does not carry them. Bounded.
const MAX_REMEMBERED: usize = 10_000;

/// The auth providers in order.
pub struct AuthChain {
    links: Vec<Link>,
    groups: Mutex<HashMap<String, Vec<String>>>,
}

/// What one plugin said to `authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnAnswer {
    Authenticated {
        name: String,
        groups: Vec<String>,
        anonymous: bool,
    },
    Rejected(String),
    Abstain,
}

/// What one plugin said to `authorize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzAnswer {
    Allow,
    Deny(String),
    Abstain,
}

/// One auth plugin by name, for direct calls and `berth plugin test`.
pub struct PluginAuth {
    plugin: Arc<Plugin>,
}

impl PluginAuth {
    pub fn authenticate(&self, credentials: &Credentials) -> Result<AuthnAnswer, PluginError> {
        let creds = match credentials {
            Credentials::Anonymous => wit::Credentials::Anonymous,
            Credentials::Basic { user, password } => {
                wit::Credentials::Basic(wit::BasicCredentials {
                    username: user.clone(),
                    password: password.clone(),
                })
            }
            Credentials::Bearer(token) => wit::Credentials::Bearer(token.clone()),
        };
        let answer = self.plugin.call(move |store, exports| {
            Box::pin(async move {
                match exports {
                    Exports::Auth(a) => {
                        a.berth_plugin_auth().call_authenticate(store, &creds).await
                    }
                    _ => Err(wasmtime::format_err!("not an auth provider")),
                }
            })
        })?;
        let plugin = self.plugin.name();
        Ok(match answer {
            wit::AuthnResult::Authenticated(p) => AuthnAnswer::Authenticated {
                name: bounds::text(p.name, bounds::NAME),
                groups: bounds::list(plugin, "groups", p.groups, bounds::ENTRIES, |g| {
                    bounds::text(g, bounds::NAME)
                }),
                anonymous: p.anonymous,
            },
            wit::AuthnResult::Rejected(m) => {
                self.plugin.metrics.denial(false);
                AuthnAnswer::Rejected(bounds::text(m, bounds::MESSAGE))
            }
            wit::AuthnResult::Abstain => AuthnAnswer::Abstain,
        })
    }

    /// `kind` is `repository` or `control` (see `wit/auth.wit`).
    pub fn authorize(
        &self,
        name: Option<&str>,
        groups: &[String],
        action: Action,
        kind: &str,
        target: &str,
    ) -> Result<AuthzAnswer, PluginError> {
        let who = wit::Principal {
            name: name.unwrap_or_default().to_owned(),
            groups: groups.to_vec(),
            anonymous: name.is_none(),
        };
        let action = match action {
            Action::Pull => wit::Action::Pull,
            Action::Push => wit::Action::Push,
            Action::Delete => wit::Action::Delete,
            Action::Admin => wit::Action::Admin,
        };
        let what = wit::Target {
            kind: kind.to_owned(),
            name: target.to_owned(),
        };
        let decision = self.plugin.call(move |store, exports| {
            Box::pin(async move {
                match exports {
                    Exports::Auth(a) => {
                        a.berth_plugin_auth()
                            .call_authorize(store, &who, action, &what)
                            .await
                    }
                    _ => Err(wasmtime::format_err!("not an auth provider")),
                }
            })
        })?;
        Ok(match decision {
            wit::Decision::Allow => AuthzAnswer::Allow,
            wit::Decision::Deny(m) => {
                self.plugin.metrics.denial(false);
                AuthzAnswer::Deny(bounds::text(m, bounds::MESSAGE))
            }
            wit::Decision::Abstain => AuthzAnswer::Abstain,
        })
    }
}

impl PluginManager {
    /// The enabled auth plugins in order, with `native` (if any) placed
    /// before the first plugin whose `order` is greater than `native_order`.
    pub fn auth_chain(&self, native: Option<(i64, Arc<dyn NativeAuth>)>) -> AuthChain {
        let mut links = Vec::new();
        let mut native = native;
        for plugin in self.enabled_of(Kind::AuthProvider) {
            if native
                .as_ref()
                .is_some_and(|(order, _)| plugin.spec.order > *order)
                && let Some((_, n)) = native.take()
            {
                links.push(Link::Native(n));
            }
            links.push(Link::Plugin(plugin));
        }
        if let Some((_, n)) = native {
            links.push(Link::Native(n));
        }
        AuthChain {
            links,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// One auth plugin by name.
    pub fn auth_provider(&self, name: &str) -> Result<PluginAuth, PluginError> {
        Ok(PluginAuth {
            plugin: self.get(name, Kind::AuthProvider)?,
        })
    }
}

impl AuthChain {
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Authorizes on a `control` target (the control API) rather than a
    /// repository: `operation` is the method and route template (`GET
    /// /v1/containers/{id}`), `action` its class (see `wit/auth.wit`).
    pub fn authorize_control(
        &self,
        principal: &Principal,
        action: Action,
        operation: &str,
    ) -> Decision {
        self.decide(principal, action, "control", operation)
    }

    fn remember(&self, name: &str, groups: Vec<String>) {
        let mut map = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REMEMBERED && !map.contains_key(name) {
            map.clear();
        }
        map.insert(name.to_owned(), groups);
    }

    fn groups_of(&self, principal: &Principal) -> Vec<String> {
        let Some(name) = principal.name.as_deref() else {
            return Vec::new();
        };
        let map = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned().unwrap_or_default()
    }

    fn decide(&self, principal: &Principal, action: Action, kind: &str, target: &str) -> Decision {
        let groups = self.groups_of(principal);
        let mut allowed = false;
        for link in &self.links {
            let answer = match link {
                Link::Native(n) => {
                    // Repository grants must never answer for a control
                    // operation (`pull:*` would match any name).
                    let decision = if kind == "control" {
                        n.authorize_control(principal, action, target)
                    } else {
                        n.authorize(principal, action, target)
                    };
                    match decision {
                        Decision::Allow => AuthzAnswer::Allow,
                        Decision::Deny(m) => AuthzAnswer::Deny(m),
                    }
                }
                Link::Plugin(p) => {
                    let auth = PluginAuth {
                        plugin: Arc::clone(p),
                    };
                    match auth.authorize(principal.name.as_deref(), &groups, action, kind, target) {
                        Ok(a) => a,
                        Err(e) if p.spec.on_failure() == OnFailure::Open => {
                            tracing::warn!(plugin = %p.name(), error = %e, "auth provider failed; skipped (fails open)");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(plugin = %p.name(), error = %e, "auth provider failed; denying (fails closed)");
                            return Decision::Deny(format!(
                                "authorization is unavailable: auth provider {} failed",
                                p.name()
                            ));
                        }
                    }
                }
            };
            match answer {
                AuthzAnswer::Deny(m) => return Decision::Deny(m),
                AuthzAnswer::Allow => allowed = true,
                AuthzAnswer::Abstain => {}
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "no auth provider allows {} on {target}",
                action.as_str()
            ))
        }
    }
}

impl Authenticator for AuthChain {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        for link in &self.links {
            let answer = match link {
                Link::Native(n) => return n.authenticate(credentials),
                Link::Plugin(p) => {
                    let auth = PluginAuth {
                        plugin: Arc::clone(p),
                    };
                    match auth.authenticate(credentials) {
                        Ok(a) => a,
                        Err(e) if p.spec.on_failure() == OnFailure::Open => {
                            tracing::warn!(plugin = %p.name(), error = %e, "auth provider failed; skipped (fails open)");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(plugin = %p.name(), error = %e, "auth provider failed; rejecting (fails closed)");
                            return Err(rejected(
                                credentials,
                                format!("auth provider {} failed", p.name()),
                            ));
                        }
                    }
                }
            };
            match answer {
                AuthnAnswer::Abstain => {}
                AuthnAnswer::Rejected(m) => return Err(rejected(credentials, m)),
                AuthnAnswer::Authenticated {
                    anonymous: true, ..
                } => return Ok(Principal::anonymous()),
                AuthnAnswer::Authenticated { name, groups, .. } => {
                    self.remember(&name, groups);
                    return Ok(Principal::user(name));
                }
            }
        }
        match credentials {
            Credentials::Anonymous => Ok(Principal::anonymous()),
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}

impl Authorizer for AuthChain {
    fn authorize(&self, principal: &Principal, action: Action, repository: &str) -> Decision {
        self.decide(principal, action, "repository", repository)
    }

    fn authorize_control(
        &self,
        principal: &Principal,
        action: Action,
        operation: &str,
    ) -> Decision {
        AuthChain::authorize_control(self, principal, action, operation)
    }
}

/// berth's errors have no room for a provider's message: bearer rejections
/// keep it; basic ones stay deliberately vague (the message is logged).
fn rejected(credentials: &Credentials, message: String) -> AuthError {
    match credentials {
        Credentials::Bearer(_) => AuthError::InvalidToken(message),
        _ => {
            tracing::info!(%message, "credentials rejected by an auth provider");
            AuthError::InvalidCredentials
        }
    }
}
