use std::path::PathBuf;

use berth_oci::Digest;

/// What went wrong in the content store, and on what.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {0} is not in the content store")]
    NotFound(Digest),
    #[error(
        "content does not match its digest: expected {expected}, got {actual}; nothing was stored"
    )]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error(
        "content of {digest} has {actual} bytes but {expected} were declared; nothing was stored"
    )]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("range {start}..={end} is outside blob {digest} of {size} bytes")]
    RangeNotSatisfiable {
        digest: Digest,
        start: u64,
        end: u64,
        size: u64,
    },
    #[error("upload {0:?} is not known to the content store")]
    IngestNotFound(String),
    #[error("upload id {0:?} is invalid: ids are 1-64 characters of [A-Za-z0-9_-]")]
    InvalidIngestId(String),
    #[error(
        "storage backend, on blob {digest}: {source}; check the storage plugin's log and grants"
    )]
    Backend {
        digest: Digest,
        #[source]
        source: crate::BackendError,
    },
    #[error("reading the content being stored failed: {0}")]
    Source(#[source] std::io::Error),
    #[error("{op} {path}: {source}; check that the disk is writable and not full")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ContentError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ContentError::Io { op, path, source }
    }
}
