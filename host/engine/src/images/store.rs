//! The local image store: recording an image means unpacking its layers
//! into snapshots (shared by chain ID) and then writing its record, which
//! takes references on its blobs.

use berth_image::ImageConfig;
use berth_oci::{Descriptor, Digest};
use berth_state::ImageRecord;
use berth_unpack::LayerRef;

use super::Images;
use crate::EngineError;

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
    images: &Images,
    digest: &Digest,
) -> Result<ImageConfig, EngineError> {
    let bytes = images
        .registry
        .content()
        .read_small(digest, CONFIG_LIMIT)
        .await
        .map_err(|e| {
            EngineError::internal(format!(
                "reading image config {digest} from the content store: {e}; \
                 if the store lost it, remove the image and pull or load it again"
            ))
        })?;
    ImageConfig::parse(&bytes, &digest.to_string()).map_err(|e| EngineError::invalid(e.to_string()))
}

/// The layers of `image` with the diffIDs its config lists.
pub(crate) async fn layers_of(
    images: &Images,
    reference: &str,
    config: &Digest,
    layers: &[Descriptor],
) -> Result<Vec<LayerRef>, EngineError> {
    let config = read_config(images, config).await?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(EngineError::invalid(format!(
            "image {reference} has {} layers but its config lists {} diffIDs; the image is malformed",
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

pub(crate) fn unpack_err(e: berth_unpack::UnpackError) -> EngineError {
    EngineError::BadContent {
        code: "unpack_failed",
        message: e.to_string(),
    }
}

/// Unpack and record `image`, whose blobs are all stored; returns its record.
pub(crate) async fn record(images: &Images, image: NewImage) -> Result<ImageRecord, EngineError> {
    let layers = layers_of(
        images,
        &image.reference,
        &image.config.digest,
        &image.layers,
    )
    .await?;
    let unpacked = images
        .unpacker
        .unpack(&layers, |_| async { Ok(()) })
        .await
        .map_err(unpack_err)?;
    record_unpacked(images, image, unpacked)
}

/// Write the record of an image whose layers are unpacked.
pub(crate) fn record_unpacked(
    images: &Images,
    image: NewImage,
    unpacked: berth_unpack::Unpacked,
) -> Result<ImageRecord, EngineError> {
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
    images.registry.state().put_image(&record)?;
    tracing::info!(image = %record.reference, applied = unpacked.applied.len(), reused = unpacked.reused.len(), "image recorded");
    Ok(record)
}
