//! The seam for a blob store that is not this machine's disk: a storage
//! plugin, an object store. The local store stays in front of it as a
//! verified cache; every byte that crosses the seam is hashed by this crate
//! (on the way out before `commit`, on the way back before it is visible),
//! so a backend can lose or corrupt data but never make a wrong blob
//! visible.
//!
//! Calls are blocking; the content store makes them on blocking threads.

use berth_oci::Digest;

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("blob {0} is not in the storage backend")]
    NotFound(String),
    #[error("storage backend failed: {0}")]
    Io(String),
    #[error("storage backend does not support this: {0}")]
    Unsupported(String),
    #[error("storage backend is misconfigured: {0}")]
    InvalidConfig(String),
    /// The backend itself broke (a plugin trapped, timed out or was cut off).
    #[error("storage backend is unavailable: {0}")]
    Unavailable(String),
}

/// One stored blob, as a backend lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendBlob {
    pub digest: Digest,
    pub size: u64,
}

/// A content-addressed, write-once blob store behind the local one.
pub trait BlobBackend: Send + Sync + 'static {
    /// The blob's size, or `None` when it is not stored.
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, BackendError>;
    /// Up to `len` bytes from `offset`; fewer only at the end of the blob.
    fn read(&self, digest: &Digest, offset: u64, len: u32) -> Result<Vec<u8>, BackendError>;
    /// Starts writing `digest` of `size` bytes. Nothing is visible until
    /// [`BackendWriter::commit`].
    fn begin_write(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn BackendWriter>, BackendError>;
    /// Deletes a blob; `false` when it was not there.
    fn delete(&self, digest: &Digest) -> Result<bool, BackendError>;
    /// Up to `limit` blobs in digest order after `after`; empty at the end.
    fn list(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<BackendBlob>, BackendError>;
}

/// One blob being written to a backend. Dropping it without `commit` must
/// leave nothing visible.
pub trait BackendWriter: Send {
    fn write(&mut self, chunk: &[u8]) -> Result<(), BackendError>;
    /// Called only after the content store verified size and digest.
    fn commit(self: Box<Self>, size: u64) -> Result<(), BackendError>;
    fn abort(self: Box<Self>);
}
