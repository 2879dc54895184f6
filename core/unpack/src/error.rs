use berth_oci::Digest;

/// Why an image could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(
        "the image has {layers} layers but its config lists {diff_ids} diffIDs; the image is malformed"
    )]
    LayerCount { layers: usize, diff_ids: usize },
    #[error("layer {digest} never arrived in the content store: {reason}")]
    NotReady { digest: Digest, reason: String },
    #[error("applying layer {digest}: {source}")]
    Apply {
        digest: Digest,
        #[source]
        source: berth_layer::LayerError,
    },
    #[error("snapshot for layer {digest}: {source}")]
    Snapshot {
        digest: Digest,
        #[source]
        source: berth_snapshot::SnapshotError,
    },
    #[error(
        "snapshot {key} has no writable directory in its mounts; the snapshotter is not overlay-like"
    )]
    NoWritableDir { key: String },
    #[error("reading layer {digest}: {source}")]
    Content {
        digest: Digest,
        #[source]
        source: berth_content::ContentError,
    },
    #[error("unpacking was interrupted: {0}")]
    Join(String),
}
