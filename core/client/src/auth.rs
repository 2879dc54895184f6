//! Answering registry challenges: HTTP basic auth, and Docker's token auth
//! (`Bearer realm=…` → GET a token from the realm, cache it per registry and
//! scope until it expires).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;

use crate::challenge::Challenge;
use crate::credentials::{CredentialStore, Credentials};
use crate::error::ClientError;
use crate::retry::{RetryPolicy, is_retryable_error, is_retryable_status};

/// The access a request needs, in the token server's scope syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub registry: String,
    pub scopes: Vec<String>,
}

impl Scope {
    pub fn pull(registry: &str, repository: &str) -> Self {
        Scope {
            registry: registry.to_string(),
            scopes: vec![format!("repository:{repository}:pull")],
        }
    }

    pub fn push(registry: &str, repository: &str) -> Self {
        Scope {
            registry: registry.to_string(),
            scopes: vec![format!("repository:{repository}:pull,push")],
        }
    }

    /// Push to `repository` while reading `from`, for cross-repository mounts.
    pub fn mount(registry: &str, repository: &str, from: &str) -> Self {
        let mut s = Self::push(registry, repository);
        s.scopes.push(format!("repository:{from}:pull"));
        s
    }

    pub fn catalog(registry: &str) -> Self {
        Scope {
            registry: registry.to_string(),
            scopes: vec!["registry:catalog:*".to_string()],
        }
    }

    fn key(&self) -> (String, String) {
        (self.registry.clone(), self.scopes.join(" "))
    }
}

pub(crate) struct Token {
    pub(crate) value: String,
    expires: Instant,
}

/// Token server answer; registries send either field name.
#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Shared authentication state of one client.
pub(crate) struct AuthState {
    store: Option<CredentialStore>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    /// Registries that asked for Basic: send credentials up front.
    basic: Mutex<HashSet<String>>,
    /// Credentials looked up once per registry: helpers are slow processes.
    creds: Mutex<HashMap<String, Option<Credentials>>>,
}

impl AuthState {
    pub fn new(store: Option<CredentialStore>) -> Self {
        AuthState {
            store,
            tokens: Mutex::new(HashMap::new()),
            basic: Mutex::new(HashSet::new()),
            creds: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> Option<&CredentialStore> {
        self.store.as_ref()
    }

    /// The `Authorization` value to send up front for `scope`, if known.
    pub fn header_for(&self, scope: &Scope) -> Option<String> {
        if let Ok(tokens) = self.tokens.lock()
            && let Some(t) = tokens.get(&scope.key())
            && t.expires > Instant::now()
        {
            return Some(format!("Bearer {}", t.value));
        }
        let wants_basic = self
            .basic
            .lock()
            .map(|b| b.contains(&scope.registry))
            .unwrap_or(false);
        if wants_basic
            && let Ok(creds) = self.creds.lock()
            && let Some(Some(c)) = creds.get(&scope.registry)
        {
            return Some(c.basic_header());
        }
        None
    }

    /// Replace what is known about `registry` (after login or logout).
    pub fn reset(&self, registry: &str, creds: Option<Credentials>) {
        if let Ok(mut t) = self.tokens.lock() {
            t.retain(|(r, _), _| r != registry);
        }
        if let Ok(mut b) = self.basic.lock() {
            b.remove(registry);
        }
        if let Ok(mut c) = self.creds.lock() {
            c.insert(registry.to_string(), creds);
        }
    }

    pub async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, ClientError> {
        if let Ok(c) = self.creds.lock()
            && let Some(found) = c.get(registry)
        {
            return Ok(found.clone());
        }
        let found = match &self.store {
            None => None,
            Some(store) => {
                let store = store.clone();
                let reg = registry.to_string();
                tokio::task::spawn_blocking(move || store.get(&reg))
                    .await
                    .map_err(|e| ClientError::BadRegistry {
                        registry: registry.to_string(),
                        detail: format!("credential lookup did not finish: {e}"),
                    })??
            }
        };
        if let Ok(mut c) = self.creds.lock() {
            c.insert(registry.to_string(), found.clone());
        }
        Ok(found)
    }

    /// Obtain what `challenge` asks for. Returns false when there is nothing
    /// new to try (Basic without credentials), so the caller reports 401.
    pub async fn answer(
        &self,
        http: &reqwest::Client,
        policy: &RetryPolicy,
        scope: &Scope,
        challenge: &Challenge,
    ) -> Result<bool, ClientError> {
        let creds = self.credentials(&scope.registry).await?;
        match challenge {
            Challenge::Basic { .. } => {
                if creds.is_none() {
                    return Ok(false);
                }
                // Another request may have just switched this registry to
                // Basic; either way the retry now sends the credentials
                // (each request answers at most one challenge).
                let now_basic = self
                    .basic
                    .lock()
                    .map(|mut b| {
                        b.insert(scope.registry.clone());
                        true
                    })
                    .unwrap_or(false);
                Ok(now_basic)
            }
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                // Ask for what this request needs plus whatever the
                // registry named, but cache under what the request needs so
                // the next request finds it before sending.
                let mut scopes = scope.scopes.clone();
                for s in asked.iter().flat_map(|a| a.split_whitespace()) {
                    if !scopes.iter().any(|have| have == s) {
                        scopes.push(s.to_string());
                    }
                }
                let token = fetch_token(
                    http,
                    policy,
                    &scope.registry,
                    realm,
                    service.as_deref(),
                    &scopes,
                    creds.as_ref(),
                )
                .await?;
                if let Ok(mut t) = self.tokens.lock() {
                    t.insert(scope.key(), token);
                }
                Ok(true)
            }
            Challenge::Other { .. } => Ok(false),
        }
    }
}

/// GET a token from a Docker token server.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    policy: &RetryPolicy,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<Token, ClientError> {
    let fail = |detail: String| ClientError::TokenServer {
        registry: registry.to_string(),
        realm: realm.to_string(),
        detail,
    };
    let mut url =
        reqwest::Url::parse(realm).map_err(|e| fail(format!("the realm is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail("the realm is not an http(s) URL".into()));
    }
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if let Some(c) = creds {
            q.append_pair("account", &c.username);
        }
    }
    let mut attempt = 0;
    let resp = loop {
        attempt += 1;
        let mut req = http.get(url.clone());
        if let Some(c) = creds {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        match req.send().await {
            Ok(r) if is_retryable_status(r.status()) && attempt < policy.max_attempts => {
                let wait = policy
                    .retry_after(r.headers())
                    .unwrap_or_else(|| policy.backoff(attempt));
                tracing::debug!(realm, status = %r.status(), ?wait, "token server busy, retrying");
                tokio::time::sleep(wait).await;
            }
            Ok(r) => break r,
            Err(e) if is_retryable_error(&e) && attempt < policy.max_attempts => {
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
            Err(e) => return Err(fail(format!("cannot reach it: {e}"))),
        }
    };
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(ClientError::Unauthorized {
            registry: registry.to_string(),
            repository: None,
            operation: "getting a token".into(),
            detail: format!("the token server refused the credentials ({status})"),
        });
    }
    if !status.is_success() {
        return Err(fail(format!("it answered {status}")));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| fail(format!("reading its answer failed: {e}")))?;
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| fail(format!("its answer is not token JSON: {e}")))?;
    let value = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| fail("its answer has neither token nor access_token".into()))?;
    // The spec says 60 s when absent; renew a little early so a token
    // does not expire between the check and the request.
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1));
    let margin = (lifetime / 10).min(Duration::from_secs(30));
    tracing::debug!(registry, ?scopes, ?lifetime, "obtained registry token");
    Ok(Token {
        value,
        expires: Instant::now() + lifetime - margin,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;

    #[test]
    fn scopes_name_what_requests_need() {
        assert_eq!(
            Scope::pull("r", "a/b").scopes,
            vec!["repository:a/b:pull".to_string()]
        );
        assert_eq!(
            Scope::mount("r", "a", "b").scopes,
            vec![
                "repository:a:pull,push".to_string(),
                "repository:b:pull".to_string()
            ]
        );
        assert_eq!(Scope::catalog("r").key().1, "registry:catalog:*");
    }

    #[test]
    fn cached_tokens_are_sent_until_expiry() {
        let auth = AuthState::new(None);
        let scope = Scope::pull("r", "a");
        assert_eq!(auth.header_for(&scope), None);
        auth.tokens.lock().unwrap().insert(
            scope.key(),
            Token {
                value: "t1".into(),
                expires: Instant::now() + Duration::from_secs(60),
            },
        );
        assert_eq!(auth.header_for(&scope).as_deref(), Some("Bearer t1"));
        assert_eq!(auth.header_for(&Scope::push("r", "a")), None);
        auth.tokens.lock().unwrap().insert(
            scope.key(),
            Token {
                value: "old".into(),
                expires: Instant::now() - Duration::from_secs(1),
            },
        );
        assert_eq!(auth.header_for(&scope), None);
    }

    #[tokio::test]
    async fn basic_is_sent_only_after_the_registry_asks() {
        let auth = AuthState::new(None);
        auth.reset("r", Some(Credentials::new("u", "p")));
        let scope = Scope::pull("r", "a");
        assert_eq!(auth.header_for(&scope), None);
        let http = reqwest::Client::new();
        let policy = RetryPolicy::default();
        let basic = Challenge::Basic { realm: None };
        assert!(auth.answer(&http, &policy, &scope, &basic).await.unwrap());
        assert_eq!(auth.header_for(&scope).as_deref(), Some("Basic dTpw"));
        // Asked again, by a concurrent request whose 401 predates the switch
        // to Basic: its retry will carry the credentials, so answer yes
        // (each request answers at most one challenge, in `send`).
        assert!(auth.answer(&http, &policy, &scope, &basic).await.unwrap());
        auth.reset("r", None);
        assert!(!auth.answer(&http, &policy, &scope, &basic).await.unwrap());
    }
}
