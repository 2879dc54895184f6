//! The local image store's blobs, as the registry client's source and sink.
//! They are the daemon's one content store, shared with the registry.

use berth_client::{BlobSink, BlobSource, BoxError, BoxReader};
use berth_content::ContentStore;
use berth_oci::Digest;
use berth_state::State;

/// Blobs of the local store. A blob written here is marked used so GC
/// leaves it alone until the image record that needs it is written.
pub struct LocalBlobs {
    pub content: ContentStore,
    pub state: State,
}

impl BlobSink for LocalBlobs {
    async fn has(&self, digest: &Digest) -> bool {
        matches!(self.content.stat(digest).await, Ok(Some(_)))
            && self.state.touch_blob(digest).is_ok()
    }

    async fn write(&self, digest: &Digest, size: u64, reader: BoxReader) -> Result<(), BoxError> {
        self.state.touch_blob(digest)?;
        self.content.write_blob(digest, Some(size), reader).await?;
        Ok(())
    }
}

impl BlobSource for LocalBlobs {
    async fn open(&self, digest: &Digest) -> Result<(BoxReader, u64), BoxError> {
        let (f, size) = self.content.open_blob(digest).await?;
        Ok((Box::new(f), size))
    }
}
