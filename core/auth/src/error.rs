//! The errors of this crate, and the two ways a request can be refused.

use berth_state::StateError;

/// What went wrong while authenticating, managing users or signing tokens.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("malformed Authorization header: {0}")]
    MalformedHeader(String),
    #[error("unsupported authorization scheme {0:?}; use Basic or Bearer")]
    UnsupportedScheme(String),
    /// Deliberately does not say whether the user or the password was wrong.
    #[error("invalid user name or password")]
    InvalidCredentials,
    #[error("auth mode {0:?} is unknown; use none, basic or token")]
    InvalidMode(String),
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token expired; request a new one from the token endpoint")]
    TokenExpired,
    #[error("user name {0:?} is invalid: use 1-64 characters of [a-z0-9._-]")]
    InvalidUserName(String),
    #[error("user {0:?} already exists; remove it first or change its password")]
    UserExists(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("password must not be empty")]
    EmptyPassword,
    #[error("password is {0} bytes long; bcrypt takes at most 71")]
    PasswordTooLong(usize),
    #[error("password contains a NUL character, which bcrypt cannot take")]
    PasswordHasNul,
    /// Too many failed password checks from this client: refused without
    /// looking at the password.
    #[error(
        "too many failed logins from this client; try again in {} s",
        crate::throttle::whole_secs(*retry_after)
    )]
    Throttled { retry_after: std::time::Duration },
    #[error("bcrypt cost {0} is out of range; use 4 to 31 (default 10)")]
    InvalidCost(u32),
    #[error("grant {grant:?} is invalid: {reason}")]
    InvalidGrant { grant: String, reason: String },
    #[error("scope {scope:?} is invalid: {reason}")]
    InvalidScope { scope: String, reason: String },
    #[error("hashing a password: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    #[error("signing a token: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
    #[error("the stored token signing key is unusable: {0}")]
    SigningKey(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a request was refused, in the terms the HTTP layer answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No or invalid credentials: answer 401 with `WWW-Authenticate: {challenge}`.
    Unauthorized { challenge: String, message: String },
    /// Authenticated, but not allowed: answer 403.
    Denied { message: String },
    /// A malformed or unsupported token request: answer 400. containerd
    /// falls back from POST to GET only on 400/401/404/405, so unsupported
    /// grant types must end up here and nowhere else.
    BadRequest { message: String },
    /// Too many failed logins from this client: answer 429 with
    /// `Retry-After: {retry_after_secs}`.
    TooManyRequests {
        retry_after_secs: u64,
        message: String,
    },
    /// Berth itself failed (the state database, signing): answer 500.
    Internal { message: String },
}

impl Denial {
    /// The HTTP status code this denial maps to.
    pub fn status(&self) -> u16 {
        match self {
            Denial::Unauthorized { .. } => 401,
            Denial::Denied { .. } => 403,
            Denial::BadRequest { .. } => 400,
            Denial::TooManyRequests { .. } => 429,
            Denial::Internal { .. } => 500,
        }
    }

    /// The human message.
    pub fn message(&self) -> &str {
        match self {
            Denial::Unauthorized { message, .. }
            | Denial::Denied { message }
            | Denial::BadRequest { message }
            | Denial::TooManyRequests { message, .. }
            | Denial::Internal { message } => message,
        }
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Denial {}
