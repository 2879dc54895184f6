//! The OCI Distribution v1.1 endpoint. Repository names contain `/`, so
//! everything under `/v2/` goes to one handler that parses the path once
//! (see [`paths`]) and dispatches on what it names and the method.

mod blobs;
mod errors;
mod manifests;
mod paths;
mod token;
mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use berth_auth::{Access, Action, AuthService, Principal};
use berth_registry::Registry;

pub use errors::ApiError;
use paths::Route;

/// What the registry endpoint needs.
pub struct RegistryApp {
    pub registry: Registry,
    pub auth: Arc<AuthService>,
    /// Told of every manifest pushed (repository, digest), e.g. to scan it.
    pub pushed: Option<tokio::sync::mpsc::UnboundedSender<(String, berth_oci::Digest)>>,
}

/// `fn app(state) -> Router` for the registry endpoint.
pub fn app(state: Arc<RegistryApp>) -> Router {
    Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .route("/token", any(token::token))
        .with_state(state)
}

pub(crate) type Shared = State<Arc<RegistryApp>>;

/// Query parameters, all values of each (decoded once, here).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

async fn dispatch(State(app): Shared, req: Request) -> Response {
    let method = req.method().clone();
    let route = paths::parse(req.uri().path());
    let query = Query::parse(req.uri().query());
    let allow = route.as_ref().ok().map(Route::allowed_methods);
    let result = match route {
        Ok(route) => {
            let required = required_access(&route, &method, &query);
            match check(&app, client_addr(&req), req.headers(), required).await {
                Ok(principal) => handle(&app, &principal, route, method, query, req).await,
                Err(denied) => Err(denied),
            }
        }
        Err(e) => Err(e),
    };
    let mut resp = result.unwrap_or_else(|e| e.into_response());
    // RFC 9110 §15.5.6: a 405 says which methods the resource does take.
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = allow
    {
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    }
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

/// What a request needs the caller to be allowed to do.
fn required_access(route: &Route, method: &Method, query: &Query) -> Vec<Access> {
    let read = method == Method::GET || method == Method::HEAD;
    match route {
        Route::Base => vec![],
        Route::Catalog => vec![Access::catalog()],
        Route::Tags { repo } | Route::Referrers { repo, .. } => {
            vec![Access::repository(repo.clone(), &[Action::Pull])]
        }
        Route::Manifest { repo, .. } | Route::Blob { repo, .. } => {
            let action = if read {
                Action::Pull
            } else if method == Method::DELETE {
                Action::Delete
            } else {
                Action::Push
            };
            vec![Access::repository(repo.clone(), &[action])]
        }
        Route::UploadStart { repo } => {
            let mut v = vec![Access::repository(
                repo.clone(),
                &[Action::Pull, Action::Push],
            )];
            if let Some(from) = query.get("from") {
                v.push(Access::repository(from.to_string(), &[Action::Pull]));
            }
            v
        }
        Route::Upload { repo, .. } => vec![Access::repository(
            repo.clone(),
            &[Action::Pull, Action::Push],
        )],
    }
}

/// The peer's address, which the server puts in each request (see
/// `berth::registry_server`); absent in in-process tests.
pub(crate) fn client_addr(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Authorise a request. Any check may cost a bcrypt verification or a call
/// to an auth plugin, which may take up to its deadline even for an
/// anonymous request: it runs on the blocking pool, off the async workers.
/// Only a registry without auth answers at once.
async fn check(
    app: &RegistryApp,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    required: Vec<Access>,
) -> Result<Principal, ApiError> {
    if app.auth.config().mode == berth_auth::Mode::None {
        return Ok(Principal::anonymous());
    }
    let authz = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let auth = app.auth.clone();
    blocking(move || {
        auth.check(client, authz.as_deref(), &required)
            .map_err(ApiError::Denied)
    })
    .await
}

/// Runs `f` on the blocking pool. Whatever authorises (a bcrypt
/// verification, an auth plugin's call, which may take up to its deadline)
/// must never hold an async worker while it does.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::Denied(berth_auth::Denial::Internal {
            message: e.to_string(),
        }))
    })
}

async fn handle(
    app: &RegistryApp,
    principal: &Principal,
    route: Route,
    method: Method,
    query: Query,
    req: Request,
) -> Result<Response, ApiError> {
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => {
            Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
        }
        // Listings answer HEAD too (hyper drops the body), so a client can
        // probe for a repository or the referrers API cheaply.
        (Route::Catalog, Method::GET | Method::HEAD) => manifests::catalog(app, &query),
        (Route::Tags { repo }, Method::GET | Method::HEAD) => manifests::tags(app, &repo, &query),
        (Route::Referrers { repo, digest }, Method::GET | Method::HEAD) => {
            manifests::referrers(app, &repo, &digest, &query)
        }
        (Route::Manifest { repo, reference }, m) => {
            manifests::handle(app, &repo, &reference, m, &query, req).await
        }
        (Route::Blob { repo, digest }, m) => {
            blobs::handle(app, &repo, &digest, m, req.headers()).await
        }
        (Route::UploadStart { repo }, Method::POST) => {
            uploads::start(app, principal, &repo, &query, req).await
        }
        (Route::Upload { repo, id }, m) => uploads::handle(app, &repo, &id, m, &query, req).await,
        (_, m) => Err(ApiError::unsupported(&m)),
    }
}

/// A request body as a byte stream reader, never buffered whole.
pub(crate) fn body_reader(body: Body) -> impl tokio::io::AsyncRead + Unpin + Send {
    use futures::TryStreamExt;
    tokio_util::io::StreamReader::new(body.into_data_stream().map_err(std::io::Error::other))
}
