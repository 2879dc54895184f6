//! The registry's and the TCP control API's native authentication and
//! authorisation: users with bcrypt passwords and `ACTIONS:GLOB`,
//! `control:read`, `control:write` and `admin` grants (see [`grants`]),
//! anonymous pull, Docker's token-auth flow with short-lived HS256 tokens
//! signed by a key kept in the state database, and a limit on failed logins
//! per client.
//!
//! This crate knows nothing of HTTP servers: it takes header values as
//! `&str` and returns [`Denial`]s that say which status and
//! `WWW-Authenticate` value to answer with. [`Authenticator`] and
//! [`Authorizer`] are the seam that Wasm auth plugins implement too.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_auth::{Access, Action, AuthConfig, AuthService, Mode};
//! let state = berth_state::State::open("/var/lib/berth/state")?;
//! let config = AuthConfig { mode: Mode::Token, ..AuthConfig::default() };
//! let auth = AuthService::open(&state, config)?;
//! auth.users().add("alice", "s3cret", &["pull,push:alice/*"])?;
//! let need = [Access::repository("alice/app", &[Action::Pull, Action::Push])];
//! let client = Some("192.0.2.7".parse()?);
//! match auth.check(client, Some("Basic YWxpY2U6czNjcmV0"), &need) {
//!     Ok(principal) => println!("hello {:?}", principal.name),
//!     Err(denial) => println!("{} {}", denial.status(), denial),
//! }
//! # Ok(()) }
//! ```

mod access;
pub mod conformance;
mod error;
pub mod grants;
mod principal;
mod service;
mod throttle;
mod token;
mod users;

pub use access::{Access, Action, CATALOG, parse_scope, parse_scopes};
pub use error::{AuthError, Denial};
pub use grants::Grant;
pub use principal::{Authenticator, Authorizer, Credentials, Decision, Principal};
pub use service::{
    AuthConfig, AuthService, Mode, NativeProvider, Provider, TokenForm, TokenResponse,
    parse_authorization,
};
pub use token::{ISSUER, IssuedToken, TokenSigner, VerifiedToken, rfc3339};
pub use users::{
    DEFAULT_CACHE_TTL, DEFAULT_COST, UserInfo, UserStore, VerifiedUser, validate_user_name,
};
