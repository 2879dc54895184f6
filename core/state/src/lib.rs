//! berth's metadata in sled. This is the only crate that opens the
//! database; everyone else goes through the typed operations here.
//!
//! Blob lifetime is decided here: every manifest (in any repository) and
//! every local image holds a reference on the blobs it needs, counted in
//! `blob_meta` inside the same transaction that records the manifest or
//! image. Garbage collection claims a blob only in a transaction that sees
//! no references, no recent use and sets a tombstone, so a concurrent push
//! either sees the tombstone (and re-uploads) or the collector sees its use.
//! Files are deleted only after that transaction commits.
//!
//! ```no_run
//! # fn demo() -> Result<(), berth_state::StateError> {
//! let state = berth_state::State::open("/var/lib/berth/state")?;
//! let tags = state.list_tags("library/busybox", None, Some(10))?;
//! # Ok(()) }
//! ```

mod blobs;
mod error;
mod json;
mod json_tx;
mod keys;
mod private;
mod records;
mod registry;
mod uploads;

pub use error::StateError;
pub use json::JsonTree;
pub use json_tx::{JsonTx, TxAbort};
pub use records::{BlobMeta, ImageRecord, ManifestRecord, UploadRecord};

use std::path::Path;

/// Handle on the database. Cheap to clone; all clones share one sled instance.
#[derive(Clone)]
pub struct State {
    db: sled::Db,
    repos: sled::Tree,
    tags: sled::Tree,
    manifests: sled::Tree,
    referrers: sled::Tree,
    repo_blobs: sled::Tree,
    blob_meta: sled::Tree,
    uploads: sled::Tree,
    images: sled::Tree,
}

impl State {
    /// Open (creating if needed) the database in directory `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let path = path.as_ref();
        private::prepare_dir(path)?;
        // sled's default page cache is 1 GiB; berth's metadata is small and
        // the daemon's memory must stay flat.
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(16 * 1024 * 1024)
            .flush_every_ms(Some(200));
        // sled drops its file lock when its flusher thread ends, a moment
        // after the last handle of a database closed in this process (a
        // reopen in tests, an in-process restart): wait that out briefly.
        // Another process holding the database still fails, after 2 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => {
                    break other.map_err(|source| StateError::Open {
                        path: path.to_path_buf(),
                        source,
                    })?;
                }
            }
        };
        private::tighten(path)?;
        let tree = |name: &str| db.open_tree(name).map_err(StateError::from);
        Ok(State {
            repos: tree("repos")?,
            tags: tree("tags")?,
            manifests: tree("manifests")?,
            referrers: tree("referrers")?,
            repo_blobs: tree("repo_blobs")?,
            blob_meta: tree("blob_meta")?,
            uploads: tree("uploads")?,
            images: tree("images")?,
            db,
        })
    }

    /// A tree of JSON values for a crate with simple needs (users, settings).
    /// `name` must not collide with the trees this crate owns.
    pub fn json_tree(&self, name: &str) -> Result<JsonTree, StateError> {
        Ok(JsonTree::new(self.db.open_tree(format!("ext.{name}"))?))
    }

    /// Make everything written so far durable.
    pub fn flush(&self) -> Result<(), StateError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
