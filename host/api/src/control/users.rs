//! `/v1/registry`: registry users and garbage collection.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{ControlError, Shared};

pub use berth_api_types::AddUser;

fn auth_err(e: berth_auth::AuthError) -> ControlError {
    ControlError::bad_request(e.to_string())
}

pub(crate) async fn list(State(app): Shared) -> Result<impl IntoResponse, ControlError> {
    let users = app.auth.users().list().map_err(auth_err)?;
    Ok(axum::Json(users))
}

pub(crate) async fn add(
    State(app): Shared,
    axum::Json(req): axum::Json<AddUser>,
) -> Result<impl IntoResponse, ControlError> {
    let auth = app.auth.clone();
    // bcrypt is deliberately slow: keep it off the async workers.
    tokio::task::spawn_blocking(move || auth.users().add(&req.name, &req.password, &req.grants))
        .await
        .map_err(ControlError::internal)?
        .map_err(auth_err)?;
    Ok(StatusCode::CREATED)
}

pub(crate) async fn remove(
    State(app): Shared,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    app.auth
        .users()
        .remove(&name)
        .map_err(|e| ControlError::not_found(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn gc(State(app): Shared) -> Result<impl IntoResponse, ControlError> {
    let report = app.registry.gc().await.map_err(ControlError::internal)?;
    Ok(axum::Json(report))
}
