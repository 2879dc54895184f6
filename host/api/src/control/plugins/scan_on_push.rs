//! Scan-on-push: every image manifest pushed to berth's registry is scanned
//! by the enabled scanner plugins in the background, over its layers
//! flattened into a scratch directory (berth_layer's safe extraction; no
//! snapshot is kept), and the report is kept by manifest digest for
//! `GET /v1/scans/{digest}` and `berth scan --pushed`.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use berth_layer::{ApplyOptions, WhiteoutMode};
use berth_oci::{Digest, ManifestSummary};
use berth_scan::{ImageInfo, RootView, Scanner};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::control::{ControlApp, ControlError, Shared};

const MAX_MANIFEST: u64 = 4 << 20;

fn scans(app: &ControlApp) -> Result<berth_state::JsonTree, ControlError> {
    Ok(app.registry.state().json_tree("scans")?)
}

/// Runs until the registry stops sending pushed manifests.
pub async fn run(app: Arc<ControlApp>, mut pushed: UnboundedReceiver<(String, Digest)>) {
    while let Some((repository, digest)) = pushed.recv().await {
        if app.plugins.scanners().is_empty() {
            continue;
        }
        let report = match scan_pushed(&app, &repository, &digest).await {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => serde_json::json!({
                "repository": repository, "digest": digest, "error": e.to_string(),
            }),
        };
        tracing::info!(%repository, %digest, "scanned on push");
        if let Err(e) = scans(&app).and_then(|t| Ok(t.put(&digest.to_string(), &report)?)) {
            tracing::warn!(%digest, error = %e, "keeping a scan report");
        }
    }
}

async fn scan_pushed(
    app: &Arc<ControlApp>,
    repository: &str,
    digest: &Digest,
) -> Result<Option<serde_json::Value>, ControlError> {
    let content = app.registry.content().clone();
    let bytes = content
        .read_small(digest, MAX_MANIFEST)
        .await
        .map_err(ControlError::internal)?;
    let Ok(manifest) = ManifestSummary::parse(None, &bytes) else {
        return Ok(None);
    };
    let Some(config) = manifest.config.clone().filter(|_| !manifest.is_index()) else {
        return Ok(None);
    };
    let config_json = content
        .read_small(&config.digest, MAX_MANIFEST)
        .await
        .map_err(ControlError::internal)?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        // Opening fetches a blob only a storage plugin has into the cache.
        let (file, _) = content
            .open_blob(&layer.digest)
            .await
            .map_err(ControlError::internal)?;
        layers.push((layer.media_type.clone(), file.into_std().await));
    }
    let info = ImageInfo {
        reference: format!("{repository}@{digest}"),
        digest: digest.to_string(),
        config_json: String::from_utf8_lossy(&config_json).into_owned(),
    };
    let scratch = app
        .root
        .join("plugins")
        .join("scan")
        .join(format!("push-{}", uuid::Uuid::new_v4().simple()));
    let scanners = app.plugins.scanners();
    let reports = tokio::task::spawn_blocking(move || {
        let result = (|| {
            super::sources::create_private_dir(&scratch).map_err(ControlError::internal)?;
            let opts = ApplyOptions {
                whiteouts: WhiteoutMode::Flatten,
                preserve_ownership: false,
                ..ApplyOptions::default()
            };
            for (media_type, file) in layers {
                berth_layer::apply(&scratch, &media_type, file, None, &opts)
                    .map_err(|e| ControlError::bad_request(format!("unpacking a layer: {e}")))?;
            }
            let view = RootView::open(&scratch).map_err(ControlError::internal)?;
            Ok::<_, ControlError>(
                scanners
                    .iter()
                    .map(|s| super::scan::report(s.name(), s.scan_image(&info, &view)))
                    .collect::<Vec<_>>(),
            )
        })();
        let _ = std::fs::remove_dir_all(&scratch);
        result
    })
    .await
    .map_err(ControlError::internal)??;
    Ok(Some(serde_json::json!({
        "reference": format!("{repository}@{digest}"),
        "repository": repository,
        "digest": digest,
        "reports": reports,
    })))
}

/// `GET /v1/scans/{digest}`: the report of a pushed manifest.
pub(crate) async fn get(
    State(app): Shared,
    UrlPath(digest): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let report: Option<serde_json::Value> = scans(&app)?.get(&digest)?;
    report.map(axum::Json).ok_or_else(|| {
        ControlError::not_found(format!(
            "no scan of {digest}: it was not pushed here since scan-on-push was on, or the scan is still running"
        ))
    })
}
