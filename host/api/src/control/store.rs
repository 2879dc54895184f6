//! The local image store: recording an image means unpacking its layers
//! into snapshots (shared by chain ID) and then writing its record, which
//! takes references on its blobs.

use berth_image::ImageConfig;
use berth_oci::{Descriptor, Digest};
use berth_state::ImageRecord;
use berth_unpack::LayerRef;

use super::{ControlApp, ControlError};

/// Image configs are small; a bigger one is refused rather than buffered.
const CONFIG_LIMIT: u64 = 8 * 1024 * 1024;

/// What is known of an image whose blobs are all in the content store.
pub(crate) struct NewImage {
    pub reference: String,
    /// The top-level manifest (an index, for multi-platform images).
    pub digest: Digest,
    pub media_type: String,
    /// The platform's image manifest, when `digest` is an index.
    pub platform_manifest: Option<Digest>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub origin: Option<String>,
}

/// Read an image's config from the content store.
pub(crate) async fn read_config(
    app: &ControlApp,
    digest: &Digest,
) -> Result<ImageConfig, ControlError> {
    let bytes = app
        .registry
        .content()
        .read_small(digest, CONFIG_LIMIT)
        .await
        .map_err(|e| ControlError::internal(format!("reading image config {digest}: {e}")))?;
    ImageConfig::parse(&bytes, &digest.to_string())
        .map_err(|e| ControlError::bad_request(e.to_string()))
}

/// The layers of `image` with the diffIDs its config lists.
pub(crate) async fn layers_of(
    app: &ControlApp,
    reference: &str,
    config: &Digest,
    layers: &[Descriptor],
) -> Result<Vec<LayerRef>, ControlError> {
    let config = read_config(app, config).await?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(ControlError::bad_request(format!(
            "image {reference} has {} layers but its config lists {} diffIDs",
            layers.len(),
            diff_ids.len()
        )));
    }
    Ok(layers
        .iter()
        .zip(diff_ids)
        .map(|(l, d)| LayerRef {
            digest: l.digest.clone(),
            media_type: l.media_type.clone(),
            diff_id: d.clone(),
        })
        .collect())
}

pub(crate) fn unpack_err(e: berth_unpack::UnpackError) -> ControlError {
    ControlError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "unpack_failed",
        e.to_string(),
    )
}

/// Unpack and record `image`, whose blobs are all stored; returns its record.
pub(crate) async fn record(app: &ControlApp, image: NewImage) -> Result<ImageRecord, ControlError> {
    let layers = layers_of(app, &image.reference, &image.config.digest, &image.layers).await?;
    let unpacked = app
        .unpacker
        .unpack(&layers, |_| async { Ok(()) })
        .await
        .map_err(unpack_err)?;
    record_unpacked(app, image, unpacked)
}

/// Write the record of an image whose layers are unpacked.
pub(crate) fn record_unpacked(
    app: &ControlApp,
    image: NewImage,
    unpacked: berth_unpack::Unpacked,
) -> Result<ImageRecord, ControlError> {
    let mut refs = vec![image.digest.clone(), image.config.digest.clone()];
    refs.extend(image.platform_manifest.clone());
    refs.extend(image.layers.iter().map(|l| l.digest.clone()));
    let record = ImageRecord {
        reference: image.reference,
        manifest: image.digest,
        media_type: image.media_type,
        config: image.config.digest.clone(),
        size: image.config.size + image.layers.iter().map(|l| l.size).sum::<u64>(),
        refs,
        created: berth_state::now(),
        origin: image.origin,
        chain_id: unpacked.top,
    };
    app.registry.state().put_image(&record)?;
    tracing::info!(image = %record.reference, applied = unpacked.applied.len(), reused = unpacked.reused.len(), "image recorded");
    Ok(record)
}
