//! Resumable ingests: the bytes of a chunked upload, appended across many
//! requests (and daemon restarts) until they are committed under a digest.

use std::path::PathBuf;

use berth_oci::{Algorithm, Digest, Hasher};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::write::{CHUNK, hash_copy};
use crate::{ContentError, ContentStore};

/// An upload in progress. Appends are hashed as they are written, so a
/// commit costs no second read (except for sha512 digests, which are rare).
#[derive(Debug)]
pub struct Ingest {
    store: ContentStore,
    id: String,
    path: PathBuf,
    file: File,
    offset: u64,
    hasher: Hasher,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Ingest {
    pub(crate) async fn open(store: ContentStore, id: &str) -> Result<Self, ContentError> {
        if !valid_id(id) {
            return Err(ContentError::InvalidIngestId(id.to_string()));
        }
        let path = store.ingest_dir().join(id);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(crate::store::FILE_MODE)
            .open(&path)
            .await
            .map_err(ContentError::io("open upload", &path))?;
        // After a restart the hash state is gone: rebuild it from the bytes
        // on disk, which are exactly what was acknowledged or more.
        let mut hasher = Algorithm::Sha256.hasher();
        let offset = rehash(&mut file, &mut hasher, &path).await?;
        Ok(Ingest {
            store,
            id: id.to_string(),
            path,
            file,
            offset,
            hasher,
        })
    }

    pub(crate) async fn remove(store: &ContentStore, id: &str) -> Result<bool, ContentError> {
        if !valid_id(id) {
            return Err(ContentError::InvalidIngestId(id.to_string()));
        }
        let path = store.ingest_dir().join(id);
        match fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ContentError::io("remove upload", path)(e)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Bytes received so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Append everything `src` yields. On error, the ingest keeps the bytes
    /// that were fully written and stays usable from its new offset, so a
    /// client can resume; anything torn is cut off.
    pub async fn append<R: AsyncRead + Unpin>(&mut self, src: R) -> Result<u64, ContentError> {
        self.cut_unacknowledged().await?;
        let mut written = 0;
        let res = hash_copy(src, &self.file, &mut self.hasher, &mut written, &self.path).await;
        self.offset += written;
        if res.is_err() {
            let _ = self.file.set_len(self.offset).await;
        }
        res.map(|()| written)
    }

    /// An append whose request went away mid-body (its future dropped) may
    /// have left a chunk on disk that the offset and the hash never took in:
    /// cut it off, so the file is again exactly what was acknowledged.
    async fn cut_unacknowledged(&mut self) -> Result<(), ContentError> {
        let on_disk = self
            .file
            .metadata()
            .await
            .map_err(ContentError::io("stat upload", &self.path))?
            .len();
        if on_disk != self.offset {
            tracing::debug!(upload = %self.id, on_disk, offset = self.offset, "cutting an abandoned chunk");
            self.file
                .set_len(self.offset)
                .await
                .map_err(ContentError::io("truncate upload", &self.path))?;
        }
        Ok(())
    }

    /// Verify the ingest against `expected` (and `expected_size`, if given)
    /// and make it a blob. On a mismatch nothing becomes visible and the
    /// ingest is left as it was; the caller decides whether to drop it.
    pub async fn commit(
        mut self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<u64, ContentError> {
        // The hash covers what was acknowledged; the published file must be
        // exactly that too.
        self.cut_unacknowledged().await?;
        if let Some(want) = expected_size
            && want != self.offset
        {
            return Err(ContentError::SizeMismatch {
                digest: expected.clone(),
                expected: want,
                actual: self.offset,
            });
        }
        let actual = if expected.algorithm() == Algorithm::Sha256 {
            self.hasher.clone().finish()
        } else {
            let mut f = File::open(&self.path)
                .await
                .map_err(ContentError::io("open upload", &self.path))?;
            let mut h = expected.algorithm().hasher();
            rehash(&mut f, &mut h, &self.path).await?;
            h.finish()
        };
        if &actual != expected {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.file
            .sync_all()
            .await
            .map_err(ContentError::io("fsync", &self.path))?;
        self.store.publish(&self.path, expected).await?;
        Ok(self.offset)
    }
}

async fn rehash(f: &mut File, h: &mut Hasher, path: &std::path::Path) -> Result<u64, ContentError> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(ContentError::io("read upload", path))?;
        if n == 0 {
            return Ok(total);
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
}
