use std::path::PathBuf;

use berth_oci::Digest;

/// What went wrong while applying or producing a layer, and on what.
///
/// Every variant that concerns a tar entry names it, so an operator can find
/// the offending member with `tar -tvf`.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(
        "media type {0:?} is not a layer berth can apply: expected an OCI or Docker tar layer (plain, gzip or zstd)"
    )]
    UnsupportedMediaType(String),
    #[error("layer entry {entry:?} is refused: {reason}; the layer is malformed or malicious")]
    UnsafePath { entry: String, reason: &'static str },
    #[error(
        "layer entry {entry:?} would be written through the symlink {component:?}; writes through symlinks are refused because they could leave the snapshot"
    )]
    ThroughSymlink { entry: String, component: String },
    #[error(
        "layer entry {entry:?} needs {component:?} to be a directory but it is not; the layer conflicts with an earlier one"
    )]
    NotADirectory { entry: String, component: String },
    #[error(
        "hard link {entry:?} points to {target:?}, which is not a file inside the snapshot; the layer is malformed or malicious"
    )]
    LinkOutside { entry: String, target: String },
    #[error(
        "layer entry {entry:?} declares {size} bytes, more than the limit of {limit}; raise ApplyOptions::max_file_size if the image is trusted"
    )]
    FileTooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "the tar headers of {at} (PAX records, GNU long name or long link) exceed {limit} bytes (limit max_header_bytes); the layer is malformed or malicious"
    )]
    HeaderTooLarge {
        /// "the first entry" or "the entry after NAME".
        at: String,
        limit: u64,
    },
    #[error(
        "the layer uncompresses to more than {limit} bytes (limit max_layer_bytes, berthd's [images] max_layer_bytes); raise it only if the image is trusted"
    )]
    LayerTooLarge { limit: u64 },
    #[error(
        "the layer has more than {limit} tar entries (limit max_entries, berthd's [images] max_layer_entries); raise it only if the image is trusted"
    )]
    TooManyEntries { limit: u64 },
    #[error(
        "layer entry {entry:?} has tar type {kind:?}, which berth does not apply; the layer may have been written by an unusual tool"
    )]
    UnsupportedEntry { entry: String, kind: String },
    #[error(
        "the uncompressed layer does not match its diffID: expected {expected}, got {actual}; the blob is corrupt or the image config is wrong, and the snapshot must be discarded"
    )]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error(
        "reading the layer stream failed {where_}: {source}; the blob is truncated or corrupt, re-fetch it"
    )]
    Stream {
        where_: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{op} for layer entry {entry:?} failed: {source}; check that the target is writable and not full"
    )]
    Entry {
        op: &'static str,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} uses an overlayfs feature berth cannot export ({feature}); mount snapshots without metacopy and redirect_dir"
    )]
    UnsupportedOverlay {
        path: PathBuf,
        feature: &'static str,
    },
}

impl LayerError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| LayerError::Io { op, path, source }
    }

    pub(crate) fn entry(op: &'static str, entry: &str) -> impl FnOnce(std::io::Error) -> Self {
        let entry = entry.to_string();
        move |source| LayerError::Entry { op, entry, source }
    }
}

/// rustix reports raw errnos; the rest of the crate speaks `std::io::Error`.
pub(crate) fn errno(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}
