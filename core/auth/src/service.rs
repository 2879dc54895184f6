//! The service the HTTP layer calls: parse the Authorization header, check a
//! request against the access it needs (a registry request, or an operation
//! of the control API), and run Docker's token endpoint. Every password
//! check goes through the failed-login limit ([`crate::throttle`]).

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_state::State;
use serde::{Deserialize, Serialize};

use crate::throttle::{DEFAULT_MAX_FAILURES, DEFAULT_WINDOW, LoginThrottle, ThrottleKey};
use crate::token::{TokenSigner, rfc3339};
use crate::users::{DEFAULT_COST, UserStore};
use crate::{
    Access, Action, AuthError, Authenticator, Authorizer, Credentials, Decision, Denial, Principal,
    grants, parse_scopes,
};

/// How the registry asks clients to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Everything is allowed; credentials are ignored.
    #[default]
    None,
    /// Challenge with `Basic realm="berth"`; clients send a password each time.
    Basic,
    /// Docker's token flow: challenge with `Bearer realm=...`, clients fetch a
    /// token from the realm. Basic credentials are still accepted on `/v2/`
    /// (handy for curl; Docker clients follow the challenge anyway).
    Token,
}

impl std::str::FromStr for Mode {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Mode, AuthError> {
        match s {
            "none" => Ok(Mode::None),
            "basic" => Ok(Mode::Basic),
            "token" => Ok(Mode::Token),
            other => Err(AuthError::InvalidMode(other.to_string())),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::None => "none",
            Mode::Basic => "basic",
            Mode::Token => "token",
        })
    }
}

/// Configuration of [`AuthService`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub mode: Mode,
    /// Let anyone (anonymous or not) pull any repository, in every mode.
    pub anonymous_pull: bool,
    pub token_ttl_secs: u64,
    /// The token endpoint's URL, put in the Bearer challenge.
    pub realm: String,
    /// The service name clients echo back and tokens carry as audience.
    pub service: String,
    /// Failed password checks a client may make, each within
    /// `failed_login_window_secs` of the last, before it is locked out for
    /// a window (429, whatever the password); 0 turns the limit off. See
    /// `throttle`.
    pub max_failed_logins: u32,
    pub failed_login_window_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: Mode::None,
            anonymous_pull: false,
            token_ttl_secs: 300,
            realm: "http://127.0.0.1:5000/v2/token".to_string(),
            service: "berth".to_string(),
            max_failed_logins: DEFAULT_MAX_FAILURES,
            failed_login_window_secs: DEFAULT_WINDOW.as_secs(),
        }
    }
}

/// The OAuth2 form of a POST to the token endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub refresh_token: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    pub service: Option<String>,
    pub client_id: Option<String>,
    pub access_type: Option<String>,
}

/// The token endpoint's JSON answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: String,
    /// The same as `token`, for OAuth2 clients.
    pub access_token: String,
    pub expires_in: u64,
    /// RFC 3339.
    pub issued_at: String,
}

/// Native authentication and authorisation for the registry.
///
/// [`AuthService::check`] and [`AuthService::issue_token`] may run a bcrypt
/// verification (tens of milliseconds) on a cache miss: call them from
/// `spawn_blocking` on an async runtime.
///
/// By default users, passwords and grants are the native ones
/// ([`UserStore`]). [`AuthService::set_provider`] puts another provider —
/// the host's chain of auth plugins, which may include the native one (see
/// [`AuthService::native`]) — in charge of passwords and permissions; the
/// HTTP-facing rules stay here: challenges, 401 versus 403, and bearer
/// tokens, which this service signs and therefore verifies itself.
pub struct AuthService {
    config: AuthConfig,
    users: Arc<UserStore>,
    signer: TokenSigner,
    provider: std::sync::RwLock<Option<Arc<dyn Provider>>>,
    provider_cache: ProviderCache,
    throttle: LoginThrottle,
}

/// How long a provider's "these basic credentials are good" is believed: a
/// changed password or removed user takes effect within this time.
pub const PROVIDER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
const PROVIDER_CACHE_MAX: usize = 10_000;

/// Successful provider authentications, keyed by a hash of the credentials
/// (never the password itself).
#[derive(Default)]
struct ProviderCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (std::time::Instant, Principal)>>,
}

impl ProviderCache {
    fn get(&self, key: &[u8; 32]) -> Option<Principal> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(at, _)| at.elapsed() < PROVIDER_CACHE_TTL)
            .map(|(_, p)| p.clone())
    }

    fn put(&self, key: [u8; 32], principal: Principal) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PROVIDER_CACHE_MAX {
            map.retain(|_, (at, _)| at.elapsed() < PROVIDER_CACHE_TTL);
            if map.len() >= PROVIDER_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(key, (std::time::Instant::now(), principal));
    }

    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn provider_cache_key(user: &str, password: &str) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update((user.len() as u64).to_le_bytes());
    h.update(user.as_bytes());
    h.update(password.as_bytes());
    h.finalize().into()
}

/// Authentication and authorisation in one, as a provider chain offers them.
pub trait Provider: Authenticator + Authorizer {}
impl<T: Authenticator + Authorizer> Provider for T {}

/// The native users and grants, as a provider to place in a chain.
pub struct NativeProvider {
    anonymous_pull: bool,
    users: Arc<UserStore>,
}

impl Authenticator for NativeProvider {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        match credentials {
            Credentials::Anonymous => Ok(Principal::anonymous()),
            Credentials::Basic { user, password } => {
                Ok(Principal::user(self.users.verify(user, password)?.name))
            }
            Credentials::Bearer(_) => Err(AuthError::InvalidToken(
                "bearer tokens are verified by the token service, not by a provider".into(),
            )),
        }
    }
}

impl Authorizer for NativeProvider {
    fn authorize(&self, principal: &Principal, action: Action, repository: &str) -> Decision {
        if action == Action::Pull && self.anonymous_pull {
            return Decision::Allow;
        }
        match &principal.name {
            None => Decision::Deny(format!("authentication required to {action} {repository}")),
            Some(name) => match self.users.grants(name) {
                Ok(Some(g)) if grants::permits(&g, action, repository) => Decision::Allow,
                Ok(_) => Decision::Deny(format!("user {name} may not {action} {repository}")),
                Err(e) => Decision::Deny(format!("reading the grants of {name}: {e}")),
            },
        }
    }

    fn authorize_control(
        &self,
        principal: &Principal,
        action: Action,
        operation: &str,
    ) -> Decision {
        native_control(&self.users, principal, action, operation)
    }
}

/// The native users' answer for a control operation: their `control:*` and
/// `admin` grants decide; repository grants and anonymous pull never do, and
/// a bearer token never does (it carries registry access only).
fn native_control(
    users: &UserStore,
    principal: &Principal,
    action: Action,
    operation: &str,
) -> Decision {
    if principal.token_access.is_some() {
        return Decision::Deny(format!(
            "{operation}: a registry token does not open the control API"
        ));
    }
    let Some(name) = &principal.name else {
        return Decision::Deny(format!("{operation}: authentication required"));
    };
    let needs = match action {
        Action::Pull => "control:read",
        Action::Push | Action::Delete => "control:write",
        Action::Admin => "admin",
    };
    match users.grants(name) {
        Ok(Some(g)) if grants::permits_control(&g, action) => Decision::Allow,
        Ok(_) => Decision::Deny(format!(
            "user {name} may not {operation}: it needs the {needs} grant"
        )),
        Err(e) => Decision::Deny(format!("reading the grants of {name}: {e}")),
    }
}

/// Parse an `Authorization` header value. No header is anonymous.
pub fn parse_authorization(header: Option<&str>) -> Result<Credentials, AuthError> {
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(Credentials::Anonymous);
    };
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let bytes = STANDARD
            .decode(rest)
            .map_err(|e| AuthError::MalformedHeader(format!("basic credentials: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| AuthError::MalformedHeader("basic credentials are not UTF-8".into()))?;
        // Passwords may contain ':', user names may not.
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| AuthError::MalformedHeader("basic credentials lack ':'".into()))?;
        Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(AuthError::MalformedHeader("empty bearer token".into()));
        }
        Ok(Credentials::Bearer(rest.to_string()))
    } else {
        Err(AuthError::UnsupportedScheme(scheme.to_string()))
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl AuthService {
    /// Open with bcrypt's default cost for new passwords.
    pub fn open(state: &State, config: AuthConfig) -> Result<AuthService, AuthError> {
        AuthService::open_with_cost(state, config, DEFAULT_COST)
    }

    /// Open with bcrypt `cost` (4..=31) for new passwords.
    pub fn open_with_cost(
        state: &State,
        config: AuthConfig,
        cost: u32,
    ) -> Result<AuthService, AuthError> {
        let users = Arc::new(UserStore::open(state, cost)?);
        let signer = TokenSigner::open(state, &config.service, config.token_ttl_secs)?;
        let throttle = LoginThrottle::new(
            config.max_failed_logins,
            std::time::Duration::from_secs(config.failed_login_window_secs),
        );
        Ok(AuthService {
            config,
            users,
            signer,
            provider: std::sync::RwLock::new(None),
            provider_cache: ProviderCache::default(),
            throttle,
        })
    }

    /// Puts `provider` in charge of credentials and permissions (`None`:
    /// back to the native users). Requests already being checked finish
    /// with the provider they started with.
    pub fn set_provider(&self, provider: Option<Arc<dyn Provider>>) {
        self.provider_cache.clear();
        match self.provider.write() {
            Ok(mut g) => *g = provider,
            Err(poisoned) => *poisoned.into_inner() = provider,
        }
    }

    fn provider(&self) -> Option<Arc<dyn Provider>> {
        match self.provider.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The native users and grants as a provider, for a chain.
    pub fn native(&self) -> Arc<NativeProvider> {
        Arc::new(NativeProvider {
            anonymous_pull: self.config.anonymous_pull,
            users: self.users.clone(),
        })
    }

    /// Authentication as configured, behind the failed-login limit:
    /// `client` is the peer's address, when known.
    fn authn(
        &self,
        client: Option<IpAddr>,
        credentials: &Credentials,
    ) -> Result<Principal, AuthError> {
        let Credentials::Basic { user, .. } = credentials else {
            // Tokens fail on a signature check, which costs nothing to
            // speak of and cannot be guessed.
            return self.authn_unlimited(credentials);
        };
        let key = ThrottleKey::new(client, user);
        // Before any cache: a locked-out client's right password is refused
        // too, or the lockout would not limit guessing.
        self.throttle
            .locked(&key)
            .map_err(|retry_after| AuthError::Throttled { retry_after })?;
        // A password verified moments ago is taken without a check and
        // without a place in the count: only the right password can hit
        // the cache, so this tells a guesser nothing, and a client sending
        // its right password on many requests at once (a push's parallel
        // uploads, a load test) is not mistaken for one guessing.
        if let Some(principal) = self.authn_cached(credentials) {
            return Ok(principal);
        }
        // The attempt counts from here, before the password is checked, so
        // that guesses sent at once cannot all get past the limit.
        let attempt = self
            .throttle
            .admit(&key)
            .map_err(|retry_after| AuthError::Throttled { retry_after })?;
        let result = self.authn_unlimited(credentials);
        if matches!(result, Err(AuthError::InvalidCredentials)) {
            attempt.failed();
        }
        result
    }

    /// Basic credentials verified moments ago, from the cache of whoever
    /// verifies them (the provider's, or the user store's).
    fn authn_cached(&self, credentials: &Credentials) -> Option<Principal> {
        let Credentials::Basic { user, password } = credentials else {
            return None;
        };
        match self.provider() {
            Some(_) => self.provider_cache.get(&provider_cache_key(user, password)),
            None => self
                .users
                .cached(user, password)
                .map(|v| Principal::user(v.name)),
        }
    }

    /// Tokens by this service's signature, the rest by the provider when
    /// there is one.
    fn authn_unlimited(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        match (credentials, self.provider()) {
            (Credentials::Bearer(_), _) | (_, None) => self.authenticate(credentials),
            (Credentials::Basic { user, password }, Some(p)) => {
                // Clients send basic credentials with every request: a provider
                // (a plugin) is asked once per PROVIDER_CACHE_TTL, not each time.
                let key = provider_cache_key(user, password);
                if let Some(principal) = self.provider_cache.get(&key) {
                    return Ok(principal);
                }
                let principal = p.authenticate(credentials)?;
                self.provider_cache.put(key, principal.clone());
                Ok(principal)
            }
            (_, Some(p)) => p.authenticate(credentials),
        }
    }

    /// Authorisation as configured: a token's own access decides for it.
    fn authz(&self, principal: &Principal, action: Action, repository: &str) -> Decision {
        match self.provider() {
            Some(p) if principal.token_access.is_none() => {
                if action == Action::Pull && self.config.anonymous_pull {
                    return Decision::Allow;
                }
                p.authorize(principal, action, repository)
            }
            _ => self.authorize(principal, action, repository),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// User management: add, remove, list, set_password, set_grants.
    pub fn users(&self) -> &UserStore {
        &self.users
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// The full `WWW-Authenticate` value for a request needing `required`.
    /// `error` is Docker's `insufficient_scope` / `invalid_token`.
    pub fn challenge(&self, required: &[Access], error: Option<&str>) -> String {
        match self.config.mode {
            Mode::None | Mode::Basic => "Basic realm=\"berth\"".to_string(),
            Mode::Token => {
                let mut c = format!(
                    "Bearer realm=\"{}\",service=\"{}\"",
                    quote(&self.config.realm),
                    quote(&self.config.service)
                );
                let scopes: Vec<String> = required.iter().flat_map(Access::scopes).collect();
                if !scopes.is_empty() {
                    c.push_str(&format!(",scope=\"{}\"", quote(&scopes.join(" "))));
                }
                if let Some(error) = error {
                    c.push_str(&format!(",error=\"{error}\""));
                }
                c
            }
        }
    }

    /// Authenticate the request and authorise every action in `required`.
    ///
    /// An empty `required` (the `/v2/` ping) still demands credentials in
    /// Basic and Token modes, so that `docker login` sees the challenge.
    /// A bearer token that lacks an action its user could have gets 401 with
    /// `error="insufficient_scope"` so the client fetches a wider token;
    /// a user who may not do it at all gets 403.
    ///
    /// `client` is the peer's address, which the failed-login limit counts
    /// by (by user name when `None`).
    pub fn check(
        &self,
        client: Option<IpAddr>,
        authorization: Option<&str>,
        required: &[Access],
    ) -> Result<Principal, Denial> {
        if self.config.mode == Mode::None {
            return Ok(Principal::anonymous());
        }
        let unauthorized = |message: String, error: Option<&str>| Denial::Unauthorized {
            challenge: self.challenge(required, error),
            message,
        };
        let credentials =
            parse_authorization(authorization).map_err(|e| unauthorized(e.to_string(), None))?;
        let principal = self.authn(client, &credentials).map_err(|e| match e {
            AuthError::InvalidCredentials => unauthorized(e.to_string(), None),
            AuthError::TokenExpired | AuthError::InvalidToken(_) => {
                unauthorized(e.to_string(), Some("invalid_token"))
            }
            AuthError::Throttled { retry_after } => throttled(retry_after),
            other => {
                tracing::error!(error = %other, "authentication failed");
                Denial::Internal {
                    message: other.to_string(),
                }
            }
        })?;
        if required.is_empty() && principal.is_anonymous() && principal.token_access.is_none() {
            return Err(unauthorized("authentication required".into(), None));
        }
        for access in required {
            for &action in &access.actions {
                let Decision::Deny(reason) = self.authz(&principal, action, &access.repository)
                else {
                    continue;
                };
                tracing::debug!(user = ?principal.name, %action, repository = %access.repository, %reason, "denied");
                return Err(self.refusal(&principal, action, &access.repository, reason, required));
            }
        }
        Ok(principal)
    }

    /// Whether `principal`, already let in by [`AuthService::check`], may
    /// also do `action` on `repository`. For choices the registry makes
    /// after the request's own access is settled, such as which repository
    /// an anonymous blob mount may take a blob from.
    pub fn allows(&self, principal: &Principal, action: Action, repository: &str) -> bool {
        self.config.mode == Mode::None || self.authz(principal, action, repository).is_allowed()
    }

    /// The control API on TCP: always authenticated, whatever the
    /// registry's mode, by basic credentials (registry bearer tokens carry
    /// registry access and are refused here), and `operation` (method and
    /// route template, e.g. `GET /v1/containers/{id}`) of class `action`
    /// (see [`Authorizer::authorize_control`]) must be allowed by the
    /// provider in charge: the plugin chain, or the native users'
    /// `control:read`, `control:write` and `admin` grants.
    pub fn check_control(
        &self,
        client: Option<IpAddr>,
        authorization: Option<&str>,
        action: Action,
        operation: &str,
    ) -> Result<Principal, Denial> {
        let challenge = "Basic realm=\"berth\"".to_string();
        let unauthorized = |message: String| Denial::Unauthorized {
            challenge: challenge.clone(),
            message,
        };
        let credentials =
            parse_authorization(authorization).map_err(|e| unauthorized(e.to_string()))?;
        match credentials {
            Credentials::Anonymous => {
                return Err(unauthorized(
                    "the control API on TCP needs credentials (basic auth)".into(),
                ));
            }
            Credentials::Bearer(_) => {
                return Err(unauthorized(
                    "the control API does not take bearer tokens: the registry's tokens grant \
                     registry access only. Send basic credentials of a user allowed to control \
                     berth (grants control:read, control:write or admin)"
                        .into(),
                ));
            }
            Credentials::Basic { .. } => {}
        }
        let principal = self.authn(client, &credentials).map_err(|e| match e {
            AuthError::InvalidCredentials
            | AuthError::TokenExpired
            | AuthError::InvalidToken(_) => unauthorized(e.to_string()),
            AuthError::Throttled { retry_after } => throttled(retry_after),
            other => Denial::Internal {
                message: other.to_string(),
            },
        })?;
        if principal.is_anonymous() {
            return Err(unauthorized("authentication required".into()));
        }
        let decision = match self.provider() {
            Some(p) => p.authorize_control(&principal, action, operation),
            None => native_control(&self.users, &principal, action, operation),
        };
        match decision {
            Decision::Allow => Ok(principal),
            Decision::Deny(reason) => {
                tracing::debug!(user = ?principal.name, %action, %operation, %reason, "control request denied");
                Err(Denial::Denied { message: reason })
            }
        }
    }

    /// 401 when other credentials or a wider token could help, 403 when not.
    fn refusal(
        &self,
        principal: &Principal,
        action: Action,
        repository: &str,
        reason: String,
        required: &[Access],
    ) -> Denial {
        let unauthorized = |error: Option<&str>| Denial::Unauthorized {
            challenge: self.challenge(required, error),
            message: reason.clone(),
        };
        match (&principal.name, &principal.token_access) {
            (None, None) => unauthorized(None),
            (None, Some(_)) => unauthorized(Some("insufficient_scope")),
            (Some(name), Some(_)) if self.user_permits(name, action, repository) => {
                unauthorized(Some("insufficient_scope"))
            }
            (Some(_), _) => Denial::Denied { message: reason },
        }
    }

    fn user_permits(&self, name: &str, action: Action, repository: &str) -> bool {
        if let Some(p) = self.provider() {
            return p
                .authorize(&Principal::user(name), action, repository)
                .is_allowed();
        }
        match self.users.grants(name) {
            Ok(Some(g)) => grants::permits(&g, action, repository),
            Ok(None) => false,
            Err(e) => {
                tracing::error!(user = name, error = %e, "reading grants");
                false
            }
        }
    }

    /// Docker's token endpoint. `authorization` is the request's header (GET
    /// with basic credentials, or none for anonymous); `form` is the body of
    /// a POST. The token carries what was asked for and is permitted, which
    /// may be less than what was asked for.
    pub fn issue_token(
        &self,
        client: Option<IpAddr>,
        authorization: Option<&str>,
        service: Option<&str>,
        scopes: &[String],
        form: Option<TokenForm>,
    ) -> Result<TokenResponse, Denial> {
        let bad = |message: String| Denial::BadRequest { message };
        let service = form.as_ref().and_then(|f| f.service.as_deref()).or(service);
        if let Some(s) = service.filter(|s| *s != self.config.service) {
            return Err(bad(format!(
                "this token endpoint serves {:?}, not {s:?}",
                self.config.service
            )));
        }
        let mut all_scopes = scopes.to_vec();
        let principal = match form {
            Some(form) => {
                all_scopes.extend(form.scope.clone());
                self.form_principal(client, form)?
            }
            None => self.header_principal(client, authorization)?,
        };
        let requested = parse_scopes(&all_scopes).map_err(|e| bad(e.to_string()))?;
        let granted: Vec<Access> = requested
            .iter()
            .filter_map(|want| {
                let actions: Vec<Action> = want
                    .actions
                    .iter()
                    .copied()
                    .filter(|&a| {
                        self.config.mode == Mode::None
                            || self.authz(&principal, a, &want.repository).is_allowed()
                    })
                    .collect();
                (!actions.is_empty()).then(|| Access::repository(want.repository.clone(), &actions))
            })
            .collect();
        let issued = self
            .signer
            .issue(principal.name.as_deref(), &granted)
            .map_err(|e| Denial::Internal {
                message: e.to_string(),
            })?;
        tracing::debug!(user = ?principal.name, ?granted, "token issued");
        Ok(TokenResponse {
            access_token: issued.token.clone(),
            token: issued.token,
            expires_in: issued.expires_in,
            issued_at: rfc3339(issued.issued_at),
        })
    }

    fn verify_password(
        &self,
        client: Option<IpAddr>,
        user: &str,
        password: &str,
    ) -> Result<Principal, Denial> {
        let credentials = Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        };
        match self.authn(client, &credentials) {
            Ok(p) if p.is_anonymous() => Err(Denial::Unauthorized {
                challenge: "Basic realm=\"berth\"".to_string(),
                message: AuthError::InvalidCredentials.to_string(),
            }),
            Ok(p) => Ok(p),
            Err(e @ AuthError::InvalidCredentials) => Err(Denial::Unauthorized {
                challenge: "Basic realm=\"berth\"".to_string(),
                message: e.to_string(),
            }),
            Err(AuthError::Throttled { retry_after }) => Err(throttled(retry_after)),
            Err(e) => Err(Denial::Internal {
                message: e.to_string(),
            }),
        }
    }

    fn header_principal(
        &self,
        client: Option<IpAddr>,
        authorization: Option<&str>,
    ) -> Result<Principal, Denial> {
        let credentials = parse_authorization(authorization).map_err(|e| Denial::Unauthorized {
            challenge: "Basic realm=\"berth\"".to_string(),
            message: e.to_string(),
        })?;
        match credentials {
            Credentials::Anonymous => Ok(Principal::anonymous()),
            Credentials::Basic { user, password } => self.verify_password(client, &user, &password),
            // A token that could mint tokens would never expire.
            Credentials::Bearer(_) => Err(Denial::BadRequest {
                message: "the token endpoint takes basic credentials, not a bearer token".into(),
            }),
        }
    }

    fn form_principal(&self, client: Option<IpAddr>, form: TokenForm) -> Result<Principal, Denial> {
        let bad = |message: &str| Denial::BadRequest {
            message: message.to_string(),
        };
        match form.grant_type.as_deref() {
            Some("password") => {
                let (Some(user), Some(password)) = (form.username, form.password) else {
                    return Err(bad("grant_type=password needs username and password"));
                };
                self.verify_password(client, &user, &password)
            }
            Some("refresh_token") => Err(bad(
                "refresh tokens are not supported; request a token with GET and basic credentials",
            )),
            Some(_) => Err(bad("unsupported grant_type; use password")),
            None => Err(bad("missing grant_type")),
        }
    }
}

impl Authenticator for AuthService {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        match credentials {
            Credentials::Anonymous => Ok(Principal::anonymous()),
            Credentials::Basic { user, password } => {
                Ok(Principal::user(self.users.verify(user, password)?.name))
            }
            Credentials::Bearer(token) => {
                let t = self.signer.verify(token)?;
                // A removed user's tokens stop working at once, not at expiry.
                // (Users of another provider cannot be looked up here: their
                // tokens live until they expire.)
                if let Some(sub) = &t.subject
                    && self.provider().is_none()
                    && self.users.grants(sub)?.is_none()
                {
                    return Err(AuthError::InvalidToken(format!(
                        "user {sub:?} no longer exists"
                    )));
                }
                Ok(Principal {
                    name: t.subject,
                    token_access: Some(t.access),
                })
            }
        }
    }
}

impl Authorizer for AuthService {
    fn authorize(&self, principal: &Principal, action: Action, repository: &str) -> Decision {
        if action == Action::Pull && self.config.anonymous_pull {
            return Decision::Allow;
        }
        if principal.token_access.is_some() {
            return if principal.token_allows(action, repository) {
                Decision::Allow
            } else {
                Decision::Deny(format!("the token does not grant {action} on {repository}"))
            };
        }
        match &principal.name {
            None => Decision::Deny(format!("authentication required to {action} {repository}")),
            Some(name) if self.user_permits(name, action, repository) => Decision::Allow,
            Some(name) => Decision::Deny(format!("user {name} may not {action} {repository}")),
        }
    }

    fn authorize_control(
        &self,
        principal: &Principal,
        action: Action,
        operation: &str,
    ) -> Decision {
        match self.provider() {
            Some(p) if principal.token_access.is_none() => {
                p.authorize_control(principal, action, operation)
            }
            _ => native_control(&self.users, principal, action, operation),
        }
    }
}

/// 429 for a locked-out client, with whole seconds to wait (at least one).
fn throttled(retry_after: std::time::Duration) -> Denial {
    Denial::TooManyRequests {
        retry_after_secs: crate::throttle::whole_secs(retry_after),
        message: AuthError::Throttled { retry_after }.to_string(),
    }
}
