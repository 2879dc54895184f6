//! `/v1/networks`: user-defined bridge networks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{ControlError, Shared};

pub use berth_api_types::CreateNetwork;

fn net_err(e: berth_network::NetworkError) -> ControlError {
    ControlError::bad_request(e.to_string())
}

pub(crate) async fn list(State(app): Shared) -> Result<impl IntoResponse, ControlError> {
    Ok(axum::Json(app.networks.list().map_err(net_err)?))
}

pub(crate) async fn create(
    State(app): Shared,
    axum::Json(req): axum::Json<CreateNetwork>,
) -> Result<impl IntoResponse, ControlError> {
    let subnet = req
        .subnet
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|e: berth_network::NetworkError| ControlError::bad_request(e.to_string()))
        })
        .transpose()?;
    let net = app.networks.create(&req.name, subnet).map_err(net_err)?;
    Ok((StatusCode::CREATED, axum::Json(net)))
}

pub(crate) async fn inspect(
    State(app): Shared,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    let i = app
        .networks
        .inspect(&name)
        .map_err(|e| ControlError::not_found(e.to_string()))?;
    Ok(axum::Json(
        serde_json::json!({ "network": i.network, "endpoints": i.endpoints }),
    ))
}

pub(crate) async fn remove(
    State(app): Shared,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    app.networks.remove(&name).await.map_err(net_err)?;
    Ok(StatusCode::NO_CONTENT)
}
