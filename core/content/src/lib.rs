//! The content-addressed blob store: every blob lives at
//! `ROOT/blobs/ALGORITHM/HEX` and is only ever put there by a rename after
//! its bytes were hashed while being written, checked against the expected
//! digest and size, and fsynced. A crash at any moment leaves either the
//! whole, verified blob or nothing visible; leftovers in `tmp/` are removed
//! when the store opens.
//!
//! Resumable ingests (chunked uploads) live in `ingest/ID` until they commit.
//!
//! This crate never decides what is garbage: it lists and deletes on request.
//! Reference tracking belongs to the state and registry crates.
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_content::ContentError> {
//! use berth_content::ContentStore;
//! let store = ContentStore::open("/var/lib/berth/content").await?;
//! let data = b"hello";
//! let digest = berth_oci::Digest::sha256_of(data);
//! store.write_blob(&digest, Some(5), &data[..]).await?;
//! assert_eq!(store.stat(&digest).await?, Some(5));
//! # Ok(()) }
//! ```

mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod ingest;
mod remote;
mod store;
mod write;

pub use backend::{BackendBlob, BackendError, BackendWriter, BlobBackend};
pub use error::ContentError;
pub use ingest::Ingest;
pub use store::{BlobInfo, ContentStore};
