//! The records stored in sled.

use std::collections::BTreeMap;

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

/// A manifest in a repository. Its bytes are a blob in the content store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub media_type: String,
    pub size: u64,
    /// Blobs this manifest keeps alive: its own bytes, its config, its layers.
    pub refs: Vec<Digest>,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    pub created: u64,
}

/// Reference counting and use time of one blob.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub refs: u64,
    pub last_used: u64,
    pub deleting: bool,
}

/// An upload session of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub repo: String,
    pub started: u64,
}

/// An image in the local image store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Full reference, e.g. `127.0.0.1:5000/app:1`.
    pub reference: String,
    pub manifest: Digest,
    pub media_type: String,
    pub config: Digest,
    /// Sum of the config and layer sizes.
    pub size: u64,
    /// Blobs this image keeps alive: manifest, config, layers.
    pub refs: Vec<Digest>,
    pub created: u64,
    /// The reference it was pulled from (kept across `tag`), so a push to
    /// the same registry can mount blobs from there instead of sending them.
    #[serde(default)]
    pub origin: Option<String>,
    /// Chain ID of the top layer once unpacked: the committed snapshot a
    /// container's root file system is prepared on.
    #[serde(default)]
    pub chain_id: Option<Digest>,
}
