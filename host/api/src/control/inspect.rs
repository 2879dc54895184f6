//! `/v1/images/inspect`, `/v1/images/history`, and mounting an image's
//! root file system read-only (for inspection and tests).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_oci::Reference;
use berth_snapshot::Labels;
use berth_state::ImageRecord;
use serde::Deserialize;

use super::store::read_config;
use super::{ControlApp, ControlError, Shared};

#[derive(Debug, Deserialize)]
pub struct RefQuery {
    pub reference: String,
}

#[derive(Debug, Deserialize)]
pub struct MountRequest {
    pub reference: String,
    pub target: std::path::PathBuf,
}

#[derive(Debug, Deserialize)]
pub struct UnmountRequest {
    pub target: std::path::PathBuf,
}

pub(crate) fn image(app: &ControlApp, reference: &str) -> Result<ImageRecord, ControlError> {
    let r: Reference = reference
        .parse()
        .map_err(|e: berth_oci::ReferenceError| ControlError::bad_request(e.to_string()))?;
    app.registry
        .state()
        .get_image(&r.to_string())?
        .ok_or_else(|| {
            ControlError::not_found(format!("no local image {r}; pull, load or import it first"))
        })
}

pub(crate) async fn inspect(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let img = image(&app, &q.reference)?;
    let config = read_config(&app, &img.config).await?;
    Ok(axum::Json(serde_json::json!({
        "reference": img.reference,
        "manifest": img.manifest,
        "media_type": img.media_type,
        "config_digest": img.config,
        "chain_id": img.chain_id,
        "size": img.size,
        "created": img.created,
        "origin": img.origin,
        "config": config,
    })))
}

pub(crate) async fn history(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let img = image(&app, &q.reference)?;
    let config = read_config(&app, &img.config).await?;
    Ok(axum::Json(config.history))
}

/// The view key of a mount target: one view per target directory.
fn mount_key(target: &std::path::Path) -> String {
    let d = berth_oci::Digest::sha256_of(target.to_string_lossy().as_bytes());
    format!("mount-{}", &d.hex()[..24])
}

pub(crate) async fn mount(
    State(app): Shared,
    axum::Json(req): axum::Json<MountRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let img = image(&app, &req.reference)?;
    let chain = img.chain_id.ok_or_else(|| {
        ControlError::bad_request(format!("image {} has no layers to mount", img.reference))
    })?;
    if !req.target.is_absolute() || !req.target.is_dir() {
        return Err(ControlError::bad_request(format!(
            "mount target {} must be an existing directory, given as an absolute path",
            req.target.display()
        )));
    }
    let key = mount_key(&req.target);
    let snapshots = app.unpacker.snapshots().clone();
    let target = req.target.clone();
    tokio::task::spawn_blocking(move || {
        let mounts = snapshots
            .view(&key, Some(&chain.to_string()), Labels::new())
            .map_err(|e| ControlError::new(StatusCode::CONFLICT, "mount_failed", e.to_string()))?;
        if let Err(e) = berth_snapshot::mount_all(&mounts, &target) {
            let _ = snapshots.remove(&key);
            return Err(ControlError::internal(format!(
                "mounting at {}: {e}",
                target.display()
            )));
        }
        Ok(())
    })
    .await
    .map_err(ControlError::internal)??;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn unmount(
    State(app): Shared,
    axum::Json(req): axum::Json<UnmountRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let key = mount_key(&req.target);
    let snapshots = app.unpacker.snapshots().clone();
    tokio::task::spawn_blocking(move || {
        snapshots.stat(&key).map_err(|_| {
            ControlError::not_found(format!("no image is mounted at {}", req.target.display()))
        })?;
        berth_snapshot::unmount(&req.target).map_err(|e| {
            ControlError::internal(format!("unmounting {}: {e}", req.target.display()))
        })?;
        snapshots.remove(&key).map_err(ControlError::internal)
    })
    .await
    .map_err(ControlError::internal)??;
    Ok(StatusCode::NO_CONTENT)
}
