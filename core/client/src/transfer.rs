//! Where blobs come from and go to ([`BlobSource`], [`BlobSink`]), how
//! progress is reported ([`Progress`]), and moving one blob with the
//! checks and restarts a pull or push needs.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use berth_oci::{Digest, ErrorCode};

use crate::error::{BoxError, ClientError};
use crate::transport::{RegistryClient, Repository};
use crate::upload::MountOutcome;

/// A boxed byte stream, the currency between the client and stores.
pub type BoxReader = Box<dyn AsyncRead + Send + Unpin>;

/// Where pushed blobs (and manifests) are read from.
pub trait BlobSource: Send + Sync {
    /// Open `digest` from its first byte; returns the reader and the size.
    /// Called again when an upload has to start over.
    fn open(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<(BoxReader, u64), BoxError>> + Send;
}

/// Where pulled blobs (and manifests) are written to.
pub trait BlobSink: Send + Sync {
    /// Whether `digest` is already stored (then it is not downloaded).
    fn has(&self, digest: &Digest) -> impl Future<Output = bool> + Send;

    /// Store what `reader` yields under `digest`. The reader verifies the
    /// content and fails its last read with `InvalidData` on a mismatch:
    /// a sink must propagate read errors and then keep nothing.
    fn write(
        &self,
        digest: &Digest,
        size: u64,
        reader: BoxReader,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// How a blob came to be where it was wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Already there: nothing moved.
    Present,
    /// Linked from another repository on the same registry.
    Mounted,
    /// Bytes were sent or received.
    Transferred,
}

/// Progress of blob transfers, for the CLI to draw. All methods may be
/// called from several tasks at once. After a restart, `start` is called
/// again for the same digest and counting begins anew.
pub trait Progress: Send + Sync {
    fn start(&self, _digest: &Digest, _size: u64) {}
    fn advance(&self, _digest: &Digest, _bytes: u64) {}
    fn finish(&self, _digest: &Digest, _outcome: BlobOutcome) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Counts bytes through to a [`Progress`].
struct Counting<R> {
    inner: R,
    digest: Digest,
    progress: Arc<dyn Progress>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.progress.advance(&this.digest, n as u64);
        }
        r
    }
}

fn counting<R: AsyncRead + Unpin>(
    inner: R,
    digest: &Digest,
    progress: &Arc<dyn Progress>,
) -> Counting<R> {
    Counting {
        inner,
        digest: digest.clone(),
        progress: progress.clone(),
    }
}

impl RegistryClient {
    /// Make sure `repo` has blob `digest`: skip it if the registry has it
    /// (HEAD), else try a mount from `mount_from`, else upload it from
    /// `source` — monolithic up to `config.monolithic_max`, chunked above.
    /// A failed upload restarts from the source a bounded number of times.
    pub async fn push_blob<S: BlobSource>(
        &self,
        repo: &Repository,
        digest: &Digest,
        source: &S,
        mount_from: Option<&str>,
        progress: &Arc<dyn Progress>,
    ) -> Result<BlobOutcome, ClientError> {
        if self.blob_exists(repo, digest).await?.is_some() {
            progress.finish(digest, BlobOutcome::Present);
            return Ok(BlobOutcome::Present);
        }
        let mut session = None;
        if let Some(from) = mount_from.filter(|f| *f != repo.name) {
            match self.mount_blob(repo, digest, from).await {
                Ok(MountOutcome::Mounted) => {
                    progress.finish(digest, BlobOutcome::Mounted);
                    return Ok(BlobOutcome::Mounted);
                }
                Ok(MountOutcome::Upload(s)) => session = Some(s),
                // A refused mount is no reason to fail the push.
                Err(e) => tracing::debug!(%digest, from, error = %e, "mount refused, uploading"),
            }
        }
        let max = self.config.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (reader, size) =
                source
                    .open(digest)
                    .await
                    .map_err(|source| ClientError::Source {
                        digest: digest.clone(),
                        source,
                    })?;
            progress.start(digest, size);
            let reader = counting(reader, digest, progress);
            let session = match session.take() {
                Some(s) => s,
                None => self.start_upload(repo).await?,
            };
            let result = if size <= self.config.monolithic_max {
                self.put_whole(session, digest, size, reader).await
            } else {
                self.continue_upload(session, digest, reader).await
            };
            match result {
                Ok(()) => {
                    progress.finish(digest, BlobOutcome::Transferred);
                    return Ok(BlobOutcome::Transferred);
                }
                Err(e) if attempt < max && restartable(&e) => {
                    let wait = self.config.retry.backoff(attempt);
                    tracing::warn!(%digest, %repo, error = %e, ?wait, "upload failed, starting it over");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Make sure `sink` has blob `digest` of `size` bytes from `repo`,
    /// downloading it verified unless the sink has it already.
    pub async fn pull_blob<K: BlobSink>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        sink: &K,
        progress: &Arc<dyn Progress>,
    ) -> Result<BlobOutcome, ClientError> {
        if sink.has(digest).await {
            progress.finish(digest, BlobOutcome::Present);
            return Ok(BlobOutcome::Present);
        }
        let max = self.config.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            progress.start(digest, size);
            let (reader, verdict) = self.open_blob(repo, digest, Some(size)).await?;
            let reader: BoxReader = Box::new(counting(reader, digest, progress));
            let err = match sink.write(digest, size, reader).await {
                Ok(()) => {
                    progress.finish(digest, BlobOutcome::Transferred);
                    return Ok(BlobOutcome::Transferred);
                }
                Err(e) => e,
            };
            let recorded = verdict.lock().ok().and_then(|v| v.clone());
            let Some(mismatch) = recorded else {
                // The sink failed on its own: not the registry's doing.
                return Err(ClientError::Sink {
                    digest: digest.clone(),
                    source: err,
                });
            };
            let e = self.download_error(
                repo,
                digest,
                Some(size),
                &verdict,
                io::Error::other(mismatch_text(&mismatch)),
            );
            let interrupted = matches!(mismatch, crate::blobs::Mismatch::Interrupted(_));
            if !interrupted || attempt >= max {
                return Err(e);
            }
            let wait = self.config.retry.backoff(attempt);
            tracing::warn!(%digest, %repo, error = %e, ?wait, "download broke off, starting it over");
            tokio::time::sleep(wait).await;
        }
    }
}

fn mismatch_text(m: &crate::blobs::Mismatch) -> String {
    format!("{m:?}")
}

/// Failures after which a fresh upload session may succeed. A digest the
/// registry refuses will be refused again: that is not retried.
fn restartable(e: &ClientError) -> bool {
    match e {
        ClientError::Http { .. }
        | ClientError::BadResponse { .. }
        | ClientError::UploadFailed { .. }
        // A token that expired while a streamed body was on its way: the
        // next session's POST fetches a fresh one.
        | ClientError::Unauthorized { .. } => true,
        ClientError::Registry { code, status, .. } => {
            matches!(
                code,
                Some(ErrorCode::BlobUploadInvalid | ErrorCode::BlobUploadUnknown)
            ) || *status >= 500
                || *status == 429
        }
        _ => false,
    }
}
