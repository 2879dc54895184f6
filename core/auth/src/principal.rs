//! The seam between the registry and whoever decides who may do what:
//! credentials in, a principal out, then one decision per action. The
//! native implementation is [`crate::AuthService`]; Wasm auth plugins
//! implement the same two traits through the host's adapter.

use crate::{Access, Action, AuthError};

/// What a client presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { user: String, password: String },
    Bearer(String),
}

/// Who is acting, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// `None` for anonymous.
    pub name: Option<String>,
    /// `Some` when authenticated by a bearer token: the access the token
    /// carries, which is all it may do (whatever its user could do).
    pub token_access: Option<Vec<Access>>,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal::default()
    }

    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            name: Some(name.into()),
            token_access: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name.is_none()
    }

    /// Whether the bearer token this principal came with carries `action`
    /// on `repository`. False for principals without a token.
    pub fn token_allows(&self, action: Action, repository: &str) -> bool {
        self.token_access.as_ref().is_some_and(|granted| {
            granted.iter().any(|a| {
                a.actions.contains(&action)
                    && (action == Action::Admin || a.repository == repository)
            })
        })
    }
}

/// The outcome of an authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused, with a reason a user may read.
    Deny(String),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Turns credentials into a principal. Wrong credentials are an error
/// ([`AuthError::InvalidCredentials`], [`AuthError::TokenExpired`], ...);
/// [`Credentials::Anonymous`] should yield an anonymous principal.
pub trait Authenticator: Send + Sync {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError>;
}

/// Decides whether a principal may perform `action` on `repository`, or
/// an operation of the control API.
/// For [`Action::Admin`] the repository is [`crate::CATALOG`] or whatever
/// registry-wide operation is asked for, and is not a repository name.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, principal: &Principal, action: Action, repository: &str) -> Decision;

    /// Whether `principal` may do `operation` on the control API (on TCP).
    /// `operation` is the method and route template, such as
    /// `GET /v1/containers/{id}`; `action` is its class: [`Action::Pull`]
    /// reads, [`Action::Push`] changes berth's state, [`Action::Delete`]
    /// removes something, [`Action::Admin`] can give root on the host (see
    /// `wit/auth.wit`). Never decided by repository rights.
    ///
    /// An implementation that knows nothing of the control API denies,
    /// which is what this default does.
    fn authorize_control(
        &self,
        principal: &Principal,
        action: Action,
        operation: &str,
    ) -> Decision {
        let _ = principal;
        Decision::Deny(format!(
            "{operation} ({action}) is a control operation, and this provider does not authorise those"
        ))
    }
}
