//! The control API on TCP (`--control-listen`): the same routes as on the
//! unix socket, each request authenticated by basic credentials (registry
//! bearer tokens are refused) and authorised as a control operation by the
//! provider in charge — the chain of auth plugins when there is one, else
//! berth's own users and their `control:read`, `control:write` and `admin`
//! grants.
//!
//! Providers are told the operation as its method and route template
//! (`GET /v1/containers/{id}`, never the raw path with ids in it), with
//! target kind `control`, and its class as the action ([`classify`]):
//! `pull` reads, `push` changes berth's state without handing out the host,
//! `delete` removes something, `admin` can give root on the host or change
//! its network. A route missing from the table is `admin`, the strictest, so
//! that a new route is never opened by mistake. The mapping is the plugin
//! author's contract, in `wit/auth.wit`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_auth::{Action, AuthService, Denial};

use super::{ControlApp, ControlError};

/// `app(state)` behind the auth providers.
pub fn app(state: Arc<ControlApp>) -> Router {
    let auth = state.auth.clone();
    super::app(state).layer(axum::middleware::from_fn_with_state(auth, guard))
}

/// The class of the control operation `method` on `route` (a template of
/// [`super::app`]), as the action auth providers are asked about.
pub fn classify(method: &Method, route: &str) -> Action {
    let read = *method == Method::GET || *method == Method::HEAD;
    match (method.as_str(), route) {
        // Reads: listings, inspection, logs, stats; waiting for an exit.
        (
            _,
            "/v1/info"
            | "/v1/openapi.json"
            | "/v1/images"
            | "/v1/images/inspect"
            | "/v1/images/history"
            | "/v1/images/save"
            | "/v1/registry/users"
            | "/v1/containers"
            | "/v1/containers/{id}"
            | "/v1/containers/{id}/logs"
            | "/v1/containers/{id}/stats"
            | "/v1/containers/{id}/top"
            | "/v1/volumes"
            | "/v1/volumes/{name}"
            | "/v1/networks"
            | "/v1/networks/{name}"
            | "/v1/plugins"
            | "/v1/plugins/{name}"
            | "/v1/scans/{digest}"
            | "/metrics"
            | "/healthz",
        ) if read => Action::Pull,
        ("POST", "/v1/containers/{id}/wait") => Action::Pull,
        // Root on the host, or a way round the policy that keeps it: a
        // container can be privileged or bind the host's `/`; exec and
        // attach run commands in one; cp reads and writes its files (its
        // binds included); update lifts limits; an image mount lands on any
        // host directory; a network adds a bridge and routes to the host,
        // and a subnet over the host's own can cut the host off; plugins
        // are the policy; users hold the rights.
        (
            "POST",
            "/v1/containers"
            | "/v1/containers/{id}/exec"
            | "/v1/containers/{id}/attach"
            | "/v1/containers/{id}/update"
            | "/v1/images/mount"
            | "/v1/networks"
            | "/v1/plugins"
            | "/v1/plugins/{name}/enable"
            | "/v1/plugins/{name}/disable"
            | "/v1/plugins/{name}/reload"
            | "/v1/registry/users",
        ) => Action::Admin,
        (_, "/v1/containers/{id}/archive") => Action::Admin,
        ("DELETE", "/v1/plugins/{name}" | "/v1/registry/users/{name}") => Action::Admin,
        // Removals.
        (
            "DELETE",
            "/v1/images" | "/v1/containers/{id}" | "/v1/volumes/{name}" | "/v1/networks/{name}",
        ) => Action::Delete,
        ("POST", "/v1/images/prune" | "/v1/volumes/prune" | "/v1/registry/gc") => Action::Delete,
        // Changes to berth's own state that hand out nothing of the host.
        (
            "POST",
            "/v1/images/pull"
            | "/v1/images/push"
            | "/v1/images/tag"
            | "/v1/images/unmount"
            | "/v1/images/load"
            | "/v1/images/import"
            | "/v1/images/scan"
            | "/v1/containers/{id}/kill"
            | "/v1/containers/{id}/stop"
            | "/v1/containers/{id}/start"
            | "/v1/containers/{id}/restart"
            | "/v1/containers/{id}/pause"
            | "/v1/containers/{id}/unpause"
            | "/v1/containers/{id}/resize"
            | "/v1/volumes"
            | "/v1/plugins/push",
        ) => Action::Push,
        _ => Action::Admin,
    }
}

async fn guard(State(auth): State<Arc<AuthService>>, req: Request, next: Next) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let method = req.method().clone();
    let (action, operation) = match req.extensions().get::<MatchedPath>() {
        Some(route) => (
            classify(&method, route.as_str()),
            format!("{method} {}", route.as_str()),
        ),
        // No such route: whoever may do anything may learn that.
        None => (Action::Admin, format!("{method} {}", req.uri().path())),
    };
    let op = operation.clone();
    // A provider may run bcrypt or a plugin: not on an async worker.
    let verdict = tokio::task::spawn_blocking(move || {
        auth.check_control(client, authorization.as_deref(), action, &op)
    })
    .await;
    let denial = match verdict {
        Ok(Ok(principal)) => {
            tracing::debug!(user = ?principal.name, %operation, %action, "control request allowed");
            return next.run(req).await;
        }
        Ok(Err(d)) => d,
        Err(e) => Denial::Internal {
            message: e.to_string(),
        },
    };
    let (status, code) = match &denial {
        Denial::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
        Denial::Denied { .. } => (StatusCode::FORBIDDEN, "denied"),
        Denial::BadRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_argument"),
        Denial::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        Denial::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let mut resp = ControlError::new(status, code, denial.to_string()).into_response();
    match &denial {
        Denial::Unauthorized { challenge, .. } => {
            if let Ok(v) = HeaderValue::from_str(challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        Denial::TooManyRequests {
            retry_after_secs, ..
        } => {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        _ => {}
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_in_the_classes_the_wit_documents() {
        let get = Method::GET;
        let post = Method::POST;
        let delete = Method::DELETE;
        for route in [
            "/v1/containers",
            "/v1/containers/{id}",
            "/v1/containers/{id}/logs",
            "/v1/images",
            "/v1/plugins",
            "/metrics",
        ] {
            assert_eq!(classify(&get, route), Action::Pull, "GET {route}");
        }
        assert_eq!(classify(&post, "/v1/containers/{id}/wait"), Action::Pull);
        for route in [
            "/v1/containers",
            "/v1/containers/{id}/exec",
            "/v1/containers/{id}/attach",
            "/v1/containers/{id}/update",
            "/v1/images/mount",
            "/v1/networks",
            "/v1/plugins",
            "/v1/plugins/{name}/disable",
            "/v1/registry/users",
        ] {
            assert_eq!(classify(&post, route), Action::Admin, "POST {route}");
        }
        assert_eq!(classify(&get, "/v1/containers/{id}/archive"), Action::Admin);
        assert_eq!(
            classify(&Method::PUT, "/v1/containers/{id}/archive"),
            Action::Admin
        );
        assert_eq!(
            classify(&delete, "/v1/registry/users/{name}"),
            Action::Admin
        );
        assert_eq!(classify(&delete, "/v1/plugins/{name}"), Action::Admin);
        assert_eq!(classify(&delete, "/v1/containers/{id}"), Action::Delete);
        assert_eq!(classify(&post, "/v1/registry/gc"), Action::Delete);
        assert_eq!(classify(&post, "/v1/containers/{id}/stop"), Action::Push);
        assert_eq!(classify(&post, "/v1/images/tag"), Action::Push);
        assert_eq!(classify(&post, "/v1/volumes"), Action::Push);
        // Listing networks is a read; making one changes the host's routes.
        assert_eq!(classify(&get, "/v1/networks"), Action::Pull);
        // What the table does not list is the strictest class.
        assert_eq!(classify(&get, "/v1/containers/{id}/export"), Action::Admin);
        assert_eq!(classify(&Method::PUT, "/v1/containers"), Action::Admin);
        assert_eq!(classify(&post, "/v1/info"), Action::Admin);
    }
}
