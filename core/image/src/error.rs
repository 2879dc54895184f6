//! The one error type of image archives, import and the config model.

use std::path::PathBuf;

use berth_content::ContentError;
use berth_oci::{Digest, ManifestError, ReferenceError};

/// What went wrong loading, saving or importing an image, and on what.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("storing archive entry {entry:?} failed: {source}")]
    Entry {
        entry: String,
        #[source]
        source: ContentError,
    },
    #[error("content store: {0}")]
    Store(#[from] ContentError),
    #[error(
        "reading the archive failed: {0}; check that it is a complete tar (optionally gzip'd) file"
    )]
    Archive(#[source] std::io::Error),
    #[error(
        "archive entry {entry:?} has {actual} bytes but its header says {expected}: the archive is truncated"
    )]
    Truncated {
        entry: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "the tar headers of {at} of the archive (PAX records, GNU long name or long link) exceed {limit} bytes; the archive is malformed or malicious"
    )]
    HeaderTooLarge {
        /// "the first entry" or "the entry after NAME".
        at: String,
        limit: u64,
    },
    #[error("archive entry {entry:?} is refused: {reason}; the archive is malformed or malicious")]
    UnsafePath {
        /// The entry's name (`NAME -> TARGET` for a link), shortened past
        /// `PATH_MAX`.
        entry: String,
        reason: &'static str,
    },
    #[error(
        "the archive has more than {limit} entries; image archives hold a few per image and layer, so it is malformed or malicious"
    )]
    TooManyEntries { limit: u64 },
    #[error(
        "the archive's entry paths and link targets add up to more than {limit} bytes; image archives name far less, so it is malformed or malicious"
    )]
    NamesTooLarge { limit: u64 },
    #[error(
        "the archive is neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)"
    )]
    NotAnImageArchive,
    #[error("{referenced_by} names {entry:?}, which the archive does not contain")]
    MissingEntry {
        entry: String,
        referenced_by: String,
    },
    #[error(
        "{referenced_by} needs blob {digest}, which is neither in the archive nor in the store"
    )]
    MissingBlob {
        digest: Digest,
        referenced_by: String,
    },
    #[error("{what} is not valid JSON of the expected shape: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} is larger than {limit} bytes; metadata files this big are refused")]
    TooLarge { what: String, limit: u64 },
    #[error("manifest {digest}: {source}")]
    Manifest {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    #[error("{0}")]
    Reference(#[from] ReferenceError),
    #[error("image config {config} lists {diff_ids} diff IDs but the image has {layers} layers")]
    LayerCount {
        config: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error(
        "layer {layer} uncompresses to {actual}, but the image config says its diff ID is {expected}"
    )]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("{digest} has media type {media_type:?}, which berth cannot {action}")]
    UnsupportedMediaType {
        digest: Digest,
        media_type: String,
        action: &'static str,
    },
    #[error(
        "index {index} has no image for {platform}; pull or load one for this platform instead"
    )]
    NoPlatform { index: Digest, platform: String },
    #[error("invalid --change {change:?}: {reason}")]
    Change { change: String, reason: String },
    #[error("reading the root filesystem to import failed: {0}")]
    Source(#[source] std::io::Error),
    #[error("writing the archive failed: {0}; check that the destination is writable and not full")]
    Write(#[source] std::io::Error),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| ImageError::Json { what, source }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }
}
