//! Moving verified blobs across the [`BlobBackend`] seam. Going out, a blob
//! is pushed from its verified, fsynced temp file before it is renamed into
//! the local store, so a blob visible here is always durable in the backend.
//! Coming back, the bytes flow through the store's ordinary write path,
//! which hashes them: a backend that returns other bytes gets a
//! `DigestMismatch` and nothing becomes visible.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_oci::Digest;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use crate::{BackendError, BlobBackend, ContentError};

/// The backend is asked for at most this much at once (the WIT promises
/// plugins chunks of at most 1 MiB).
const CHUNK: u32 = 1024 * 1024;

/// Copies the verified file at `path` into the backend as `digest`.
pub(crate) async fn push(
    backend: Arc<dyn BlobBackend>,
    path: PathBuf,
    digest: Digest,
) -> Result<(), ContentError> {
    let d = digest.clone();
    tokio::task::spawn_blocking(move || push_blocking(backend.as_ref(), &path, &d))
        .await
        .map_err(|e| backend_err(&digest, BackendError::Unavailable(e.to_string())))?
}

fn push_blocking(
    backend: &dyn BlobBackend,
    path: &Path,
    digest: &Digest,
) -> Result<(), ContentError> {
    let mut file = std::fs::File::open(path).map_err(ContentError::io("open", path))?;
    let size = file
        .metadata()
        .map_err(ContentError::io("stat", path))?
        .len();
    let mut writer = backend
        .begin_write(digest, size)
        .map_err(|e| backend_err(digest, e))?;
    let mut buf = vec![0u8; CHUNK as usize];
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                writer.abort();
                return Err(ContentError::io("read", path)(e));
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = writer.write(&buf[..n]) {
            writer.abort();
            return Err(backend_err(digest, e));
        }
    }
    writer.commit(size).map_err(|e| backend_err(digest, e))?;
    tracing::debug!(%digest, size, "blob stored in backend");
    Ok(())
}

/// A reader over the backend's copy of `digest` (of `size` bytes), fed by
/// a blocking thread one chunk at a time so memory stays flat.
pub(crate) fn reader(
    backend: Arc<dyn BlobBackend>,
    digest: Digest,
    size: u64,
) -> impl tokio::io::AsyncRead + Unpin + Send {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let mut offset = 0;
        while offset < size {
            let item = match backend.read(&digest, offset, CHUNK) {
                Ok(chunk) if chunk.is_empty() => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("storage backend ended {digest} at {offset} of {size} bytes"),
                )),
                Ok(chunk) => {
                    offset += chunk.len() as u64;
                    Ok(Bytes::from(chunk))
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                return;
            }
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    StreamReader::new(Box::pin(chunks))
}

pub(crate) async fn blocking<T: Send + 'static>(
    digest: &Digest,
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, ContentError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackendError::Unavailable(e.to_string()))
        .and_then(|r| r)
        .map_err(|e| backend_err(digest, e))
}

fn backend_err(digest: &Digest, source: BackendError) -> ContentError {
    ContentError::Backend {
        digest: digest.clone(),
        source,
    }
}
