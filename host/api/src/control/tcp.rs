//! The control API on TCP (`--control-listen`): the same routes as on the
//! unix socket, each request authenticated and authorised as an admin
//! action on its path by the provider in charge — the chain of auth
//! plugins when there is one, else berth's own users.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_auth::{AuthService, Denial};

use super::{ControlApp, ControlError};

/// `app(state)` behind the auth providers.
pub fn app(state: Arc<ControlApp>) -> Router {
    let auth = state.auth.clone();
    super::app(state).layer(axum::middleware::from_fn_with_state(auth, guard))
}

async fn guard(State(auth): State<Arc<AuthService>>, req: Request, next: Next) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let operation = req.uri().path().to_string();
    let op = operation.clone();
    // A provider may run bcrypt or a plugin: not on an async worker.
    let verdict =
        tokio::task::spawn_blocking(move || auth.check_control(authorization.as_deref(), &op))
            .await;
    let denial = match verdict {
        Ok(Ok(principal)) => {
            tracing::debug!(user = ?principal.name, %operation, "control request allowed");
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
        Denial::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let mut resp = ControlError::new(status, code, denial.to_string()).into_response();
    if let Denial::Unauthorized { challenge, .. } = &denial
        && let Ok(v) = HeaderValue::from_str(challenge)
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}
