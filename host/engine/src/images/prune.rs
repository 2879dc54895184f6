//! Prune: remove the layer snapshots no image needs, then
//! collect blobs. Safe while pulls run: a snapshot newer than the GC grace
//! period is left alone (an unpack may be about to record it), and a
//! snapshot with children cannot be removed at all.

use std::collections::BTreeSet;

use berth_snapshot::{Info, Kind};

use super::Images;
use crate::EngineError;

/// What a prune freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    pub snapshots_removed: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
}

impl Images {
    /// Remove unneeded layer snapshots, then collect unreferenced blobs.
    pub async fn prune(&self) -> Result<PruneReport, EngineError> {
        let removed = self.prune_snapshots().await?;
        let gc = self
            .registry
            .gc()
            .await
            .map_err(|e| EngineError::internal(format!("collecting unused blobs: {e}")))?;
        Ok(PruneReport {
            snapshots_removed: removed,
            blobs_deleted: gc.blobs_deleted,
            bytes_freed: gc.bytes_freed,
        })
    }

    async fn prune_snapshots(&self) -> Result<u64, EngineError> {
        let grace = self.registry.config().gc_grace_secs;
        let snapshots = self.unpacker.snapshots().clone();
        let images = self.registry.state().list_images()?;
        tokio::task::spawn_blocking(move || -> Result<u64, EngineError> {
            let mut needed = BTreeSet::new();
            for img in &images {
                let mut next = img.chain_id.as_ref().map(|c| c.to_string());
                while let Some(name) = next {
                    next = snapshots.stat(&name).ok().and_then(|i| i.parent);
                    needed.insert(name);
                }
            }
            let cutoff = berth_state::now().saturating_sub(grace);
            let mut removed = 0;
            // Leaves first: each pass removes what no longer has children.
            loop {
                let mut all: Vec<Info> = Vec::new();
                snapshots
                    .walk(&mut |i| all.push(i.clone()))
                    .map_err(|e| EngineError::internal(format!("listing snapshots: {e}")))?;
                let parents: BTreeSet<String> =
                    all.iter().filter_map(|i| i.parent.clone()).collect();
                let doomed: Vec<&Info> = all
                    .iter()
                    .filter(|i| {
                        let stale = i.created <= cutoff;
                        let unneeded = match i.kind {
                            Kind::Committed => !needed.contains(&i.name),
                            // Leftovers of unpacks that crashed; views are mounts in use.
                            Kind::Active => i.name.starts_with("unpack-"),
                            Kind::View => false,
                        };
                        stale && unneeded && !parents.contains(&i.name)
                    })
                    .collect();
                if doomed.is_empty() {
                    break;
                }
                let mut progress = false;
                for i in doomed {
                    match snapshots.remove(&i.name) {
                        Ok(()) => {
                            removed += 1;
                            progress = true;
                        }
                        Err(e) => {
                            tracing::warn!(snapshot = %i.name, error = %e, "prune could not remove")
                        }
                    }
                }
                if !progress {
                    break;
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|e| EngineError::internal(format!("the prune task: {e}")))?
    }
}
