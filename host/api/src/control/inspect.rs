//! `/v1/images/inspect`, `/v1/images/history`, `/v1/images/mount` and
//! `/v1/images/unmount`: parse, call the image service, render.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{ControlError, Shared};

pub use berth_api_types::{MountRequest, RefQuery, UnmountRequest};

pub(crate) async fn inspect(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let details = app.engine.images().inspect(&q.reference).await?;
    let img = details.record;
    Ok(axum::Json(berth_api_types::ImageInspect {
        reference: img.reference,
        manifest: img.manifest.to_string(),
        media_type: img.media_type,
        config_digest: img.config.to_string(),
        chain_id: img.chain_id.map(|c| c.to_string()),
        size: img.size,
        created: img.created,
        origin: img.origin,
        config: serde_json::to_value(details.config).map_err(ControlError::internal)?,
    }))
}

pub(crate) async fn history(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    Ok(axum::Json(app.engine.images().history(&q.reference).await?))
}

pub(crate) async fn mount(
    State(app): Shared,
    axum::Json(req): axum::Json<MountRequest>,
) -> Result<impl IntoResponse, ControlError> {
    app.engine
        .images()
        .mount(&req.reference, &req.target)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn unmount(
    State(app): Shared,
    axum::Json(req): axum::Json<UnmountRequest>,
) -> Result<impl IntoResponse, ControlError> {
    app.engine.images().unmount(&req.target).await?;
    Ok(StatusCode::NO_CONTENT)
}
