//! Online garbage collection. It runs while the registry serves: each blob
//! is claimed in a sled transaction that sees no references and no use
//! within the grace period, and only then is its file removed.

use std::time::Duration;

use crate::{Registry, RegistryError};

/// What a collection removed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub uploads_expired: u64,
}

impl Registry {
    /// Collect unreferenced blobs and expired upload sessions.
    pub async fn gc(&self) -> Result<GcReport, RegistryError> {
        let mut report = GcReport::default();
        let now = berth_state::now();
        for (id, rec) in self.state.list_uploads()? {
            if rec.started + self.config.upload_expiry_secs < now {
                self.forget_session(&id).await;
                report.uploads_expired += 1;
            }
        }
        let cutoff = now.saturating_sub(self.config.gc_grace_secs);
        for blob in self.content.list().await? {
            let modified = blob
                .modified
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs();
            // A file written after the cutoff is in use by definition, even
            // if its metadata was not yet recorded.
            if modified > cutoff || !self.state.claim_blob_for_gc(&blob.digest, cutoff)? {
                continue;
            }
            match self.content.delete(&blob.digest).await {
                Ok(_) => {
                    self.state.release_blob(&blob.digest)?;
                    report.blobs_deleted += 1;
                    report.bytes_freed += blob.size;
                }
                Err(e) => {
                    self.state.unclaim_blob(&blob.digest)?;
                    return Err(e.into());
                }
            }
        }
        tracing::info!(?report, "garbage collection done");
        Ok(report)
    }

    /// Finish what a crash interrupted: collections that claimed blobs but
    /// did not release them.
    pub async fn recover(&self) -> Result<(), RegistryError> {
        for d in self.state.blobs_being_deleted()? {
            self.content.delete(&d).await?;
            self.state.release_blob(&d)?;
        }
        Ok(())
    }
}
