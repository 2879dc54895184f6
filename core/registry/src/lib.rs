//! The OCI Distribution v1.1 server logic, independent of any HTTP
//! framework: the HTTP layer parses a request into one of these calls and
//! turns the result (or [`RegistryError`], which carries the spec's error
//! code and status) into a response.
//!
//! Blobs live in the shared [`ContentStore`]; repositories, tags, manifest
//! records, referrers, blob links and upload sessions in [`State`]. Manifests
//! are stored byte for byte. Upload sessions survive a restart: their record
//! is in sled and their bytes in a content-store ingest.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_registry::{Registry, RegistryConfig};
//! let content = berth_content::ContentStore::open("/tmp/r/content").await?;
//! let state = berth_state::State::open("/tmp/r/state")?;
//! let registry = Registry::new(content, state, RegistryConfig::default());
//! let tags = registry.tags("library/busybox", None, None)?;
//! # Ok(()) }
//! ```

mod blobs;
mod error;
mod gc;
mod listing;
mod manifests;
mod uploads;

pub use blobs::BlobRead;
pub use error::RegistryError;
pub use gc::GcReport;
pub use listing::Page;
pub use manifests::{ManifestGet, ManifestPut};
pub use uploads::UploadStart;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_content::{ContentStore, Ingest};
use berth_state::State;

/// Tunables of the registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// A blob not referenced by any manifest or image is collected only when
    /// it has not been used (uploaded, linked, HEAD-checked) for this long,
    /// so a push in progress never loses its blobs.
    pub gc_grace_secs: u64,
    /// Upload sessions idle for longer than this are dropped by GC.
    pub upload_expiry_secs: u64,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            gc_grace_secs: 600,
            upload_expiry_secs: 24 * 3600,
            max_manifest_bytes: 4 * 1024 * 1024,
        }
    }
}

type IngestSlot = Arc<tokio::sync::Mutex<Option<Ingest>>>;

/// The registry service. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    content: ContentStore,
    state: State,
    config: RegistryConfig,
    /// Open ingests of live upload sessions, so consecutive PATCHes keep
    /// their hash state; a session missing here is reopened from disk.
    ingests: Arc<Mutex<HashMap<String, IngestSlot>>>,
}

impl Registry {
    pub fn new(content: ContentStore, state: State, config: RegistryConfig) -> Self {
        Registry {
            content,
            state,
            config,
            ingests: Arc::default(),
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn state(&self) -> &State {
        &self.state
    }
}
