//! The local image store's blobs, as the registry client's source and sink.
//! They are the daemon's one content store, shared with the registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_client::{BlobSink, BlobSource, BoxError, BoxReader};
use berth_content::ContentStore;
use berth_oci::Digest;
use berth_state::State;
use tokio::sync::Notify;

/// Blobs of the local store. A blob written here is marked used so GC
/// leaves it alone until the image record that needs it is written. Every
/// arrival is announced, so an unpack can start on a layer the moment it
/// is stored.
#[derive(Clone)]
pub struct LocalBlobs {
    pub content: ContentStore,
    pub state: State,
    arrived: Arc<Notify>,
    finished: Arc<AtomicBool>,
}

impl LocalBlobs {
    pub fn new(content: ContentStore, state: State) -> Self {
        LocalBlobs {
            content,
            state,
            arrived: Arc::default(),
            finished: Arc::default(),
        }
    }

    /// No more blobs will arrive (the transfer ended): wake every waiter.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.arrived.notify_waiters();
    }

    /// Wait until `digest` is in the store.
    pub async fn wait_for(&self, digest: &Digest) -> Result<(), String> {
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            // Register before looking, so an arrival between the look and
            // the wait is not missed.
            notified.as_mut().enable();
            if matches!(self.content.stat(digest).await, Ok(Some(_))) {
                return Ok(());
            }
            if self.finished.load(Ordering::SeqCst) {
                return Err("the transfer ended without it".to_string());
            }
            notified.await;
        }
    }
}

impl BlobSink for LocalBlobs {
    async fn has(&self, digest: &Digest) -> bool {
        matches!(self.content.stat(digest).await, Ok(Some(_)))
            && self.state.touch_blob(digest).is_ok()
    }

    async fn write(&self, digest: &Digest, size: u64, reader: BoxReader) -> Result<(), BoxError> {
        self.state.touch_blob(digest)?;
        self.content.write_blob(digest, Some(size), reader).await?;
        self.arrived.notify_waiters();
        Ok(())
    }
}

impl BlobSource for LocalBlobs {
    async fn open(&self, digest: &Digest) -> Result<(BoxReader, u64), BoxError> {
        let (f, size) = self.content.open_blob(digest).await?;
        Ok((Box::new(f), size))
    }
}
