//! A pull: download and unpack at once. The platform's manifest and config
//! are fetched first (they are small) to learn the layers and diffIDs; then
//! the layers download while each one is unpacked as soon as it is stored
//! and its parent is unpacked.

use std::sync::Arc;

use axum::http::StatusCode;
use berth_client::{ClientError, Platform, Progress, RegistryClient, Repository};
use berth_oci::{ManifestSummary, Reference};

use super::store::{self, NewImage};
use super::{ControlApp, ControlError, LocalBlobs};

fn pull_err(e: ClientError) -> ControlError {
    ControlError::new(StatusCode::BAD_GATEWAY, "pull_failed", e.to_string())
}

/// What a pull will fetch: the reference pinned to the top-level digest (so
/// both passes see the same image even if the tag moves), and the layers.
struct Plan {
    pinned: Reference,
    layers: Vec<berth_unpack::LayerRef>,
}

async fn plan(
    app: &ControlApp,
    client: &RegistryClient,
    reference: &Reference,
    platform: &Platform,
    sink: &LocalBlobs,
    progress: &Arc<dyn Progress>,
) -> Result<Plan, ControlError> {
    let repo = Repository::of(reference);
    let top = client
        .get_manifest(&repo, &reference.object())
        .await
        .map_err(pull_err)?;
    let parse = |media_type: &str, bytes: &[u8]| {
        ManifestSummary::parse(Some(media_type), bytes).map_err(|e| {
            ControlError::new(
                StatusCode::BAD_GATEWAY,
                "pull_failed",
                format!("{reference}: {e}"),
            )
        })
    };
    let mut summary = parse(&top.media_type, &top.bytes)?;
    if summary.is_index() {
        let chosen = platform.choose(&summary.manifests).ok_or_else(|| {
            ControlError::new(
                StatusCode::NOT_FOUND,
                "no_matching_platform",
                format!("{reference} has no image for {platform}"),
            )
        })?;
        let m = client
            .get_manifest(&repo, &chosen.digest.to_string())
            .await
            .map_err(pull_err)?;
        summary = parse(&m.media_type, &m.bytes)?;
    }
    let config = summary.config.clone().ok_or_else(|| {
        ControlError::new(
            StatusCode::BAD_GATEWAY,
            "pull_failed",
            format!("{reference}: manifest has no config"),
        )
    })?;
    client
        .pull_blob(&repo, &config.digest, config.size, sink, progress)
        .await
        .map_err(pull_err)?;
    let layers =
        store::layers_of(app, &reference.to_string(), &config.digest, &summary.layers).await?;
    let mut pinned = reference.clone();
    pinned.digest = Some(top.digest);
    Ok(Plan { pinned, layers })
}

pub(crate) async fn pull(
    app: Arc<ControlApp>,
    client: RegistryClient,
    reference: Reference,
    platform: Platform,
    progress: Arc<dyn Progress>,
) -> Result<serde_json::Value, ControlError> {
    let sink = super::images::local(&app);
    let plan = plan(&app, &client, &reference, &platform, &sink, &progress).await?;
    let download = async {
        let result = client
            .pull_image(&plan.pinned, &platform, &sink, progress.clone())
            .await;
        // Wake an unpack still waiting for a blob that will never come.
        sink.finish();
        result.map_err(pull_err)
    };
    let unpack = async {
        app.unpacker
            .unpack(&plan.layers, |d| {
                let sink = sink.clone();
                async move { sink.wait_for(&d).await }
            })
            .await
            .map_err(store::unpack_err)
    };
    let (pulled, unpacked) = tokio::try_join!(download, unpack)?;
    let record = store::record_unpacked(
        &app,
        NewImage {
            reference: reference.to_string(),
            digest: pulled.digest.clone(),
            media_type: pulled
                .index
                .as_ref()
                .map_or(pulled.manifest.media_type.clone(), |i| i.media_type.clone()),
            platform_manifest: pulled
                .index
                .as_ref()
                .map(|_| pulled.manifest.digest.clone()),
            config: pulled.config.clone(),
            layers: pulled.layers.clone(),
            origin: Some(reference.to_string()),
        },
        unpacked,
    )?;
    serde_json::to_value(&record).map_err(ControlError::internal)
}
