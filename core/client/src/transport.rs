//! The client itself and the one path every request takes: choose http or
//! https, attach what auth is known, answer a 401 challenge once, and retry
//! 429/5xx and connection failures with backoff — but only requests whose
//! body can be sent again. A streamed upload body is sent once; its callers
//! resume instead (see `upload`).

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};

use berth_oci::{DEFAULT_REGISTRY, ErrorBody, Reference, validate_repository};

use crate::auth::{AuthState, Scope};
use crate::challenge::preferred_challenge;
use crate::credentials::{CredentialStore, Credentials};
use crate::error::ClientError;
use crate::retry::{RetryPolicy, is_retryable_error, is_retryable_status};

/// Error bodies larger than this are cut: they are for humans.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How a client behaves. `Default` reads credentials from docker's config.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback
    /// addresses always are.
    pub insecure_registries: Vec<String>,
    pub retry: RetryPolicy,
    /// Size of each PATCH of a chunked upload; one chunk is held in memory
    /// so a failed PATCH can be resumed from the registry's offset.
    pub chunk_size: usize,
    /// Blobs up to this size are uploaded in a single streamed PUT.
    pub monolithic_max: u64,
    /// Blobs moved at once by `pull_image`/`push_image`.
    pub concurrency: usize,
    pub user_agent: String,
    /// Where logins are kept; `None` means anonymous only.
    pub credentials: Option<CredentialStore>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            retry: RetryPolicy::default(),
            chunk_size: 8 * 1024 * 1024,
            monolithic_max: 32 * 1024 * 1024,
            concurrency: 4,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
            credentials: CredentialStore::from_env().ok(),
        }
    }
}

/// A repository on a registry: `localhost:5000` + `team/app`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    pub registry: String,
    pub name: String,
}

impl Repository {
    pub fn new(registry: &str, name: &str) -> Result<Self, ClientError> {
        validate_repository(name).map_err(|e| ClientError::BadRegistry {
            registry: registry.to_string(),
            detail: e.to_string(),
        })?;
        Ok(Repository {
            registry: registry.to_string(),
            name: name.to_string(),
        })
    }

    pub fn of(reference: &Reference) -> Self {
        Repository {
            registry: reference.registry.clone(),
            name: reference.repository.clone(),
        }
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// A request body, and whether it can be sent twice.
pub(crate) enum ReqBody {
    Empty,
    Bytes(Bytes),
    /// A stream: sent at most once.
    Once(Option<reqwest::Body>),
}

pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: ReqBody,
    pub scope: Scope,
    pub operation: String,
    /// Whether a 429/5xx or a lost connection may be answered by sending
    /// the same request again. Data-carrying upload steps say no.
    pub idempotent: bool,
}

impl Req {
    pub fn new(method: Method, url: Url, scope: Scope, operation: impl Into<String>) -> Self {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: ReqBody::Empty,
            scope,
            operation: operation.into(),
            idempotent: true,
        }
    }
}

/// An OCI Distribution client for any number of registries.
pub struct RegistryClient {
    pub(crate) http: reqwest::Client,
    pub(crate) config: ClientConfig,
    pub(crate) auth: AuthState,
}

impl RegistryClient {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|source| ClientError::Http {
                registry: String::new(),
                operation: "setting up HTTP".into(),
                source,
            })?;
        Ok(RegistryClient {
            http,
            auth: AuthState::new(config.credentials.clone()),
            config,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Use `creds` for `registry` instead of looking them up in the
    /// credential store: the daemon gets them from the CLI with each pull
    /// or push, as Docker's `X-Registry-Auth` does.
    pub fn use_credentials(&self, registry: &str, creds: Credentials) {
        self.auth.reset(registry, Some(creds));
    }

    /// `http(s)://host[:port]/` for `registry`.
    pub(crate) fn base_url(&self, registry: &str) -> Result<Url, ClientError> {
        let host = if registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if self.is_plain_http(registry) {
            "http"
        } else {
            "https"
        };
        let url =
            Url::parse(&format!("{scheme}://{host}/")).map_err(|e| ClientError::BadRegistry {
                registry: registry.to_string(),
                detail: e.to_string(),
            })?;
        if url.path() != "/" || url.query().is_some() || url.username() != "" {
            return Err(ClientError::BadRegistry {
                registry: registry.to_string(),
                detail: "expected host[:port] only".into(),
            });
        }
        Ok(url)
    }

    pub(crate) fn url(&self, registry: &str, path: &str) -> Result<Url, ClientError> {
        self.base_url(registry)?
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::BadRegistry {
                registry: registry.to_string(),
                detail: e.to_string(),
            })
    }

    /// Plain HTTP for loopback and for registries configured as insecure.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        is_loopback(registry)
            || self
                .config
                .insecure_registries
                .iter()
                .any(|r| r == registry || r == host_of(registry))
    }

    /// Send `req`, answering one auth challenge and retrying what is safe
    /// to retry. Non-2xx answers are returned, for callers to interpret.
    pub(crate) async fn send(&self, mut req: Req) -> Result<Response, ClientError> {
        let registry = req.scope.registry.clone();
        let policy = &self.config.retry;
        let mut attempt = 0;
        let mut answered_challenge = false;
        loop {
            attempt += 1;
            let (body, replayable) = match &mut req.body {
                ReqBody::Empty => (None, true),
                ReqBody::Bytes(b) => (Some(reqwest::Body::from(b.clone())), true),
                ReqBody::Once(b) => match b.take() {
                    Some(b) => (Some(b), false),
                    None => {
                        return Err(ClientError::BadResponse {
                            registry,
                            operation: req.operation,
                            detail: "the request body was already sent".into(),
                        });
                    }
                },
            };
            let mut rb = self
                .http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(h) = self.auth.header_for(&req.scope) {
                rb = rb.header(AUTHORIZATION, h);
            }
            if let Some(b) = body {
                rb = rb.body(b);
            }
            tracing::trace!(method = %req.method, url = %req.url, attempt, "sending");
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e)
                    if replayable
                        && req.idempotent
                        && attempt < policy.max_attempts
                        && is_retryable_error(&e) =>
                {
                    let wait = policy.backoff(attempt);
                    tracing::warn!(registry, operation = %req.operation, error = %e, ?wait, "request failed, retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(source) => {
                    return Err(ClientError::Http {
                        registry,
                        operation: req.operation,
                        source,
                    });
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !answered_challenge {
                answered_challenge = true;
                let values: Vec<&str> = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                let challenge =
                    preferred_challenge(values).map_err(|source| ClientError::Challenge {
                        registry: registry.clone(),
                        source,
                    })?;
                let new_auth = self
                    .auth
                    .answer(&self.http, policy, &req.scope, &challenge)
                    .await?;
                if new_auth && replayable {
                    attempt -= 1;
                    continue;
                }
                return Ok(resp);
            }
            if is_retryable_status(status)
                && replayable
                && req.idempotent
                && attempt < policy.max_attempts
            {
                let wait = policy
                    .retry_after(resp.headers())
                    .unwrap_or_else(|| policy.backoff(attempt));
                tracing::warn!(registry, operation = %req.operation, %status, ?wait, "registry busy or failing, retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Turn a non-success answer into an error carrying the registry's codes.
    pub(crate) async fn error_from(
        &self,
        resp: Response,
        registry: &str,
        repository: Option<&str>,
        operation: &str,
    ) -> ClientError {
        let status = resp.status();
        let text = read_capped(resp, MAX_ERROR_BODY).await;
        let body: Option<ErrorBody> = serde_json::from_slice(&text).ok();
        let message = match &body {
            Some(b) => b
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        e.code.description().to_string()
                    } else {
                        e.message.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            None => String::from_utf8_lossy(&text)
                .trim()
                .chars()
                .take(300)
                .collect(),
        };
        if status == StatusCode::UNAUTHORIZED {
            return ClientError::Unauthorized {
                registry: registry.to_string(),
                repository: repository.map(str::to_string),
                operation: operation.to_string(),
                detail: message,
            };
        }
        ClientError::Registry {
            registry: registry.to_string(),
            repository: repository.map(str::to_string),
            operation: operation.to_string(),
            status: status.as_u16(),
            code: body.as_ref().and_then(|b| b.errors.first()).map(|e| e.code),
            body,
            message,
        }
    }
}

async fn read_capped(mut resp: Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < cap {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(cap - out.len())]),
            _ => break,
        }
    }
    out
}

/// `host` of `host[:port]`, brackets kept for IPv6.
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.split_inclusive(']').next().unwrap_or(registry);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Resolve a `Location` header against the URL that returned it: it may be
/// absolute, absolute-path or relative, and may carry a query already.
pub(crate) fn resolve_location(
    base: &Url,
    headers: &HeaderMap,
    registry: &str,
    operation: &str,
) -> Result<Url, ClientError> {
    let bad = |detail: String| ClientError::BadResponse {
        registry: registry.to_string(),
        operation: operation.to_string(),
        detail,
    };
    let loc = headers
        .get(reqwest::header::LOCATION)
        .ok_or_else(|| bad("no Location header".into()))?
        .to_str()
        .map_err(|_| bad("Location header is not ASCII".into()))?;
    base.join(loc)
        .map_err(|e| bad(format!("Location {loc:?} is not a URL: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;

    fn client(insecure: &[&str]) -> RegistryClient {
        RegistryClient::new(ClientConfig {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            credentials: None,
            ..ClientConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn plain_http_only_for_loopback_and_insecure() {
        let c = client(&["reg.lan:5000", "other.lan"]);
        for plain in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.4.5",
            "[::1]:5000",
            "[::1]",
            "reg.lan:5000",
            "other.lan:443",
        ] {
            assert!(c.is_plain_http(plain), "{plain}");
        }
        for tls in [
            "docker.io",
            "reg.lan",
            "128.0.0.1",
            "localhost.evil.com",
            "[::2]:5000",
        ] {
            assert!(!c.is_plain_http(tls), "{tls}");
        }
        assert_eq!(
            c.url("127.0.0.1:5000", "/v2/a/b/tags/list")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/a/b/tags/list"
        );
        assert_eq!(
            c.base_url("docker.io").unwrap().as_str(),
            "https://registry-1.docker.io/"
        );
        assert_eq!(
            c.base_url("[::1]:5000").unwrap().as_str(),
            "http://[::1]:5000/"
        );
        assert!(c.base_url("a/b").is_err());
        assert!(c.base_url("u@host").is_err());
    }

    #[test]
    fn locations_absolute_relative_and_with_queries() {
        let base = Url::parse("http://127.0.0.1:5000/v2/a/blobs/uploads/").unwrap();
        let loc = |l: &str| {
            let mut h = HeaderMap::new();
            h.insert(reqwest::header::LOCATION, l.parse().unwrap());
            resolve_location(&base, &h, "r", "op").unwrap().to_string()
        };
        assert_eq!(
            loc("/v2/a/blobs/uploads/u1?_state=x%3D"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=x%3D"
        );
        assert_eq!(loc("u2"), "http://127.0.0.1:5000/v2/a/blobs/uploads/u2");
        assert_eq!(
            loc("https://cdn.example/up/u3?sig=1"),
            "https://cdn.example/up/u3?sig=1"
        );
        let mut url = Url::parse(&loc("u4?_state=abc")).unwrap();
        url.query_pairs_mut().append_pair("digest", "sha256:00");
        assert_eq!(url.query(), Some("_state=abc&digest=sha256%3A00"));
        assert!(resolve_location(&base, &HeaderMap::new(), "r", "op").is_err());
    }
}
