//! `POST /v1/images/scan`: every enabled scanner plugin over a read-only
//! view of the image's file system, mounted for the scan and removed after.

use axum::extract::State;
use axum::response::IntoResponse;
use berth_scan::{ImageInfo, RootView, Scanner};
use berth_snapshot::Labels;

use crate::control::{ControlError, Shared};

pub use berth_api_types::ScanRequest;

/// One scanner's answer as the API shows it: its findings or its error.
pub(crate) fn report(
    scanner: &str,
    result: Result<Vec<berth_scan::Finding>, berth_plugins::PluginError>,
) -> serde_json::Value {
    match result {
        Ok(findings) => serde_json::json!({ "scanner": scanner, "findings": findings }),
        Err(e) => serde_json::json!({ "scanner": scanner, "error": e.to_string() }),
    }
}

pub(crate) async fn scan(
    State(app): Shared,
    axum::Json(req): axum::Json<ScanRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let img = app.engine.images().get(&req.reference)?;
    let scanners = app.plugins.scanners();
    if scanners.is_empty() {
        return Err(ControlError::bad_request(
            "no scanner plugin is enabled: install one (kind = \"scanner\"), e.g. pkg-inventory",
        ));
    }
    let chain = img.chain_id.clone().ok_or_else(|| {
        ControlError::bad_request(format!("image {} has no layers to scan", img.reference))
    })?;
    let config = app
        .registry
        .content()
        .read_small(&img.config, 4 << 20)
        .await
        .map_err(ControlError::internal)?;
    let info = ImageInfo {
        reference: img.reference.clone(),
        digest: img.manifest.to_string(),
        config_json: String::from_utf8_lossy(&config).into_owned(),
    };
    let key = format!("scan-{}", uuid::Uuid::new_v4().simple());
    let target = app.root.join("plugins").join("scan").join(&key);
    let snapshots = app.unpacker.snapshots().clone();
    let reports = tokio::task::spawn_blocking(move || {
        super::sources::create_private_dir(&target)
            .map_err(|e| ControlError::internal(format!("creating {}: {e}", target.display())))?;
        let result = (|| {
            let mounts = snapshots
                .view(&key, Some(&chain.to_string()), Labels::new())
                .map_err(ControlError::internal)?;
            berth_snapshot::mount_all(&mounts, &target).map_err(|e| {
                ControlError::internal(format!("mounting the image at {}: {e}", target.display()))
            })?;
            let view = RootView::open(&target).map_err(ControlError::internal);
            let reports = view.map(|v| {
                scanners
                    .iter()
                    .map(|s| (s.name().to_string(), s.scan_image(&info, &v)))
                    .collect::<Vec<_>>()
            });
            let _ = berth_snapshot::unmount(&target);
            reports
        })();
        let _ = snapshots.remove(&key);
        let _ = std::fs::remove_dir(&target);
        result
    })
    .await
    .map_err(ControlError::internal)??;
    let reports: Vec<serde_json::Value> = reports
        .into_iter()
        .map(|(scanner, result)| report(&scanner, result))
        .collect();
    Ok(axum::Json(serde_json::json!({
        "reference": img.reference,
        "digest": img.manifest,
        "reports": reports,
    })))
}
