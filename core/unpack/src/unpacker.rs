//! The unpack loop.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use berth_content::ContentStore;
use berth_layer::{ApplyOptions, Limits, WhiteoutMode};
use berth_oci::Digest;
use berth_snapshot::{Kind, Labels, Mount, SnapshotError, Snapshotter};

use crate::UnpackError;

/// Label on a committed layer snapshot: the blob it was unpacked from.
pub const LABEL_LAYER: &str = "berth.layer.digest";

/// One layer of an image, bottom first.
#[derive(Debug, Clone)]
pub struct LayerRef {
    pub digest: Digest,
    pub media_type: String,
    pub diff_id: Digest,
}

/// What an unpack did.
#[derive(Debug, Clone, Default)]
pub struct Unpacked {
    /// Chain ID of the top layer: the snapshot a container's root is prepared on.
    pub top: Option<Digest>,
    /// Layers applied now.
    pub applied: Vec<Digest>,
    /// Layers whose stack was already unpacked.
    pub reused: Vec<Digest>,
}

/// Unpacks layers into a snapshotter from a content store.
#[derive(Clone)]
pub struct Unpacker {
    content: ContentStore,
    snapshots: Arc<dyn Snapshotter>,
    limits: Limits,
}

/// The directory a layer is applied into: the overlay upper dir of an
/// active snapshot, or the source of a bind mount (a bottom layer).
pub fn writable_dir(mounts: &[Mount]) -> Option<PathBuf> {
    let m = mounts.first()?;
    if m.fs_type == "overlay" {
        m.options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(PathBuf::from)
    } else if m.fs_type == "bind" && !m.options.iter().any(|o| o == "ro") {
        Some(m.source.clone())
    } else {
        None
    }
}

impl Unpacker {
    pub fn new(content: ContentStore, snapshots: Arc<dyn Snapshotter>) -> Self {
        Unpacker {
            content,
            snapshots,
            limits: Limits::default(),
        }
    }

    /// Apply every layer within `limits` (the defaults otherwise).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn snapshots(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshots
    }

    /// Unpack `layers` (bottom first). `ready(digest)` resolves once that
    /// blob is in the content store (or fails with why it never will be).
    pub async fn unpack<F, Fut>(
        &self,
        layers: &[LayerRef],
        ready: F,
    ) -> Result<Unpacked, UnpackError>
    where
        F: Fn(Digest) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = berth_image::chain_ids(&diff_ids);
        let mut out = Unpacked::default();
        let mut parent: Option<Digest> = None;
        for (layer, chain) in layers.iter().zip(chains) {
            let present = matches!(self.snapshots.stat(&chain.to_string()), Ok(info) if info.kind == Kind::Committed);
            if present {
                out.reused.push(layer.digest.clone());
            } else {
                ready(layer.digest.clone())
                    .await
                    .map_err(|reason| UnpackError::NotReady {
                        digest: layer.digest.clone(),
                        reason,
                    })?;
                self.apply_one(layer, &chain, parent.as_ref()).await?;
                out.applied.push(layer.digest.clone());
            }
            parent = Some(chain);
        }
        out.top = parent;
        Ok(out)
    }

    async fn apply_one(
        &self,
        layer: &LayerRef,
        chain: &Digest,
        parent: Option<&Digest>,
    ) -> Result<(), UnpackError> {
        let snap_err = |source| UnpackError::Snapshot {
            digest: layer.digest.clone(),
            source,
        };
        let key = format!("unpack-{}", uuid::Uuid::new_v4().simple());
        let parent_name = parent.map(|p| p.to_string());
        let mounts = self
            .snapshots
            .prepare(&key, parent_name.as_deref(), Labels::new())
            .map_err(snap_err)?;
        let result = self.apply_into(layer, &key, &mounts).await;
        if let Err(e) = result {
            if let Err(rm) = self.snapshots.remove(&key) {
                tracing::warn!(key, error = %rm, "removing a failed unpack snapshot");
            }
            return Err(e);
        }
        let mut labels = Labels::new();
        labels.insert(LABEL_LAYER.to_string(), layer.digest.to_string());
        match self.snapshots.commit(&chain.to_string(), &key, labels) {
            Ok(()) => {
                tracing::debug!(layer = %layer.digest, chain = %chain, "layer unpacked");
                Ok(())
            }
            // Another pull unpacked the same stack first: use theirs.
            Err(SnapshotError::AlreadyExists(_)) => {
                let _ = self.snapshots.remove(&key);
                Ok(())
            }
            Err(e) => {
                let _ = self.snapshots.remove(&key);
                Err(snap_err(e))
            }
        }
    }

    async fn apply_into(
        &self,
        layer: &LayerRef,
        key: &str,
        mounts: &[Mount],
    ) -> Result<(), UnpackError> {
        let dir = writable_dir(mounts).ok_or_else(|| UnpackError::NoWritableDir {
            key: key.to_string(),
        })?;
        let path = self.content.blob_path(&layer.digest);
        let (layer, diff_id, limits) = (layer.clone(), layer.diff_id.clone(), self.limits);
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| UnpackError::Content {
                digest: layer.digest.clone(),
                source: berth_content::ContentError::Io {
                    op: "open layer",
                    path: path.clone(),
                    source: e,
                },
            })?;
            let opts = ApplyOptions {
                whiteouts: WhiteoutMode::Overlay,
                limits,
                ..ApplyOptions::default()
            };
            berth_layer::apply(&dir, &layer.media_type, file, Some(&diff_id), &opts)
                .map(|_| ())
                .map_err(|source| UnpackError::Apply {
                    digest: layer.digest.clone(),
                    source,
                })
        })
        .await
        .map_err(|e| UnpackError::Join(e.to_string()))?
    }
}
