use std::path::PathBuf;

use berth_oci::Digest;

/// What went wrong with berth's metadata.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("opening the state database at {path}: {source}; is another berthd using this --root?")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("making {path} readable by berthd alone: {source}; check that berthd owns it")]
    Private {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Db(#[from] sled::Error),
    #[error("state record {key:?} is corrupt: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {0} is being garbage collected; upload it again")]
    BlobDeleting(Digest),
}

impl From<sled::transaction::TransactionError<StateError>> for StateError {
    fn from(e: sled::transaction::TransactionError<StateError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StateError::Db(e),
        }
    }
}
