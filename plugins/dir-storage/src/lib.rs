//! `dir-storage` — a storage backend that keeps blobs as files in a directory.
//!
//! Layout under `root`: `blobs/ALG/HEX` (e.g. `blobs/sha256/9f86d0...`) for blobs, `tmp/` for
//! writes in progress. A write goes to a fresh temp file; `commit` checks the size, fsyncs it,
//! renames it into place and fsyncs the directory, so after a crash a blob is complete or
//! absent. `abort`, or dropping the writer, removes the temp file; temp files older than a day
//! (a crash's leftovers) are removed when the plugin starts. `list` pages in digest order.
//!
//! Configuration (`[plugin.config]`):
//! - `root` (string, required): guest path of the store, e.g. `/data`. The operator grants a
//!   host directory read-write at that path.
//!
//! ```toml
//! [[plugin]]
//! name = "dir-storage"
//! kind = "storage-backend"
//! source = "dir_storage.wasm"
//! [plugin.config]
//! root = "/data"
//! [plugin.grants]
//! dirs = [{ host = "/var/lib/berth/blobs", guest = "/data", access = "rw" }]
//! ```

pub mod store;

use std::cell::OnceCell;

use berth_plugin_sdk::prelude::*;

pub use store::{DirStore, DirWriter};

/// The plugin's configuration table.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Guest path of the store's directory.
    pub root: String,
}

#[derive(Default)]
struct DirStorage {
    store: OnceCell<Result<DirStore, StorageError>>,
}

impl DirStorage {
    fn store(&self) -> Result<&DirStore, StorageError> {
        self.store
            .get_or_init(|| {
                let config: Config = berth_plugin_sdk::config()
                    .map_err(|err| StorageError::InvalidConfig(format!("dir-storage: {err}")))?;
                DirStore::open(config.root)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl StorageBackend for DirStorage {
    type Writer = DirWriter;

    fn stat(&self, digest: &str) -> Result<Option<u64>, StorageError> {
        self.store()?.stat(digest)
    }

    fn read(&self, digest: &str, offset: u64, length: u32) -> Result<Vec<u8>, StorageError> {
        self.store()?.read(digest, offset, length)
    }

    fn begin_write(&self, digest: &str, size: u64) -> Result<DirWriter, StorageError> {
        self.store()?.begin_write(digest, size)
    }

    fn delete(&self, digest: &str) -> Result<bool, StorageError> {
        self.store()?.delete(digest)
    }

    fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<BlobInfo>, StorageError> {
        self.store()?.list(after, limit)
    }
}

berth_plugin_sdk::export_storage!(DirStorage);
