use std::path::PathBuf;

use berth_state::StateError;

use crate::mount::MountError;

/// What went wrong in a snapshotter, and on what.
///
/// The first three variants are the contract's error kinds: every
/// implementation returns them for the same conditions (the conformance
/// suite checks it).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {0:?} does not exist")]
    NotFound(String),
    #[error("snapshot {0:?} already exists")]
    AlreadyExists(String),
    #[error("snapshot {key:?}: {reason}")]
    FailedPrecondition { key: String, reason: String },
    #[error("invalid snapshot key {0:?}: keys are non-empty and at most 1024 bytes")]
    InvalidKey(String),
    #[error(
        "the file system under {path} does not report file types in directory entries (d_type); \
         overlayfs needs it: put the berth root on ext4, or on xfs formatted with ftype=1"
    )]
    NoDType { path: PathBuf },
    #[error(
        "snapshot root {path} contains ',' or ':', which overlayfs cannot take in its options; \
         choose another --root"
    )]
    UnusableRoot { path: PathBuf },
    #[error("{op} {path}: {source}; check that the disk is writable and not full")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot metadata: {0}")]
    State(#[from] StateError),
    #[error(transparent)]
    Mount(#[from] MountError),
}

impl SnapshotError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SnapshotError::Io { op, path, source }
    }

    pub(crate) fn precondition(key: &str, reason: impl Into<String>) -> Self {
        SnapshotError::FailedPrecondition {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}
