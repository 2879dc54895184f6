//! Whole-blob operations: write, stat, read (ranges), list, delete.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_oci::{Algorithm, Digest};
use tokio::fs::{self, File};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use crate::ContentError;
use crate::ingest::Ingest;
use crate::write::{hash_copy, sync_dir};

/// One blob as listed by [`ContentStore::list`].
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
    pub modified: SystemTime,
}

/// A content-addressed store rooted at a directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

impl ContentStore {
    /// Open (creating if needed) the store at `root`, removing whatever a
    /// crash left in `tmp/`. Ingests are kept: they are resumable uploads.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, ContentError> {
        let root = root.into();
        for alg in ALGORITHMS {
            let d = root.join("blobs").join(alg.as_str());
            fs::create_dir_all(&d)
                .await
                .map_err(ContentError::io("create directory", &d))?;
        }
        let tmp = root.join("tmp");
        if fs::try_exists(&tmp).await.unwrap_or(false) {
            fs::remove_dir_all(&tmp)
                .await
                .map_err(ContentError::io("clean up", &tmp))?;
        }
        for d in [tmp, root.join("ingest")] {
            fs::create_dir_all(&d)
                .await
                .map_err(ContentError::io("create directory", &d))?;
        }
        Ok(ContentStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob lives (whether or not it exists yet).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    pub(crate) fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    pub(crate) fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Size of the blob, or `None` if it is absent.
    pub async fn stat(&self, digest: &Digest) -> Result<Option<u64>, ContentError> {
        let p = self.blob_path(digest);
        match fs::metadata(&p).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContentError::io("stat", p)(e)),
        }
    }

    /// Open the whole blob for reading; returns the file and its size.
    pub async fn open_blob(&self, digest: &Digest) -> Result<(File, u64), ContentError> {
        let p = self.blob_path(digest);
        let f = match File::open(&p).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContentError::NotFound(digest.clone()));
            }
            Err(e) => return Err(ContentError::io("open", p)(e)),
        };
        let size = f
            .metadata()
            .await
            .map_err(ContentError::io("stat", &p))?
            .len();
        Ok((f, size))
    }

    /// Read bytes `start..=end` of a blob as a stream.
    pub async fn read_range(
        &self,
        digest: &Digest,
        start: u64,
        end: u64,
    ) -> Result<impl AsyncRead + Send + Unpin + use<>, ContentError> {
        let (mut f, size) = self.open_blob(digest).await?;
        if start > end || end >= size {
            return Err(ContentError::RangeNotSatisfiable {
                digest: digest.clone(),
                start,
                end,
                size,
            });
        }
        f.seek(SeekFrom::Start(start))
            .await
            .map_err(ContentError::io("seek", self.blob_path(digest)))?;
        Ok(f.take(end - start + 1))
    }

    /// Read a small blob (a manifest or config) whole. Refuses blobs larger
    /// than `limit` so a caller can never be made to buffer a layer.
    pub async fn read_small(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ContentError> {
        let (f, size) = self.open_blob(digest).await?;
        if size > limit {
            return Err(ContentError::SizeMismatch {
                digest: digest.clone(),
                expected: limit,
                actual: size,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        f.take(limit)
            .read_to_end(&mut buf)
            .await
            .map_err(ContentError::io("read", self.blob_path(digest)))?;
        Ok(buf)
    }

    /// Stream `src` into the store as `expected`. The bytes are hashed while
    /// they are written to a temp file; only if digest (and `expected_size`,
    /// when given) match is the file fsynced and renamed into place. Two
    /// writers of the same digest at once are safe: both renames put the
    /// same verified bytes in place. Returns the size.
    pub async fn write_blob<R: AsyncRead + Unpin>(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
        src: R,
    ) -> Result<u64, ContentError> {
        let tmp = self.tmp_path();
        let result = self
            .write_verified(&tmp, expected, expected_size, src)
            .await;
        if result.is_err() {
            let _ = fs::remove_file(&tmp).await;
        }
        result
    }

    async fn write_verified<R: AsyncRead + Unpin>(
        &self,
        tmp: &Path,
        expected: &Digest,
        expected_size: Option<u64>,
        src: R,
    ) -> Result<u64, ContentError> {
        let mut f = File::create(tmp)
            .await
            .map_err(ContentError::io("create", tmp))?;
        let mut hasher = expected.algorithm().hasher();
        let mut size = 0;
        hash_copy(src, &mut f, &mut hasher, &mut size, tmp).await?;
        let actual = hasher.finish();
        if let Some(want) = expected_size
            && want != size
        {
            return Err(ContentError::SizeMismatch {
                digest: expected.clone(),
                expected: want,
                actual: size,
            });
        }
        if &actual != expected {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        f.sync_all().await.map_err(ContentError::io("fsync", tmp))?;
        drop(f);
        self.publish(tmp, expected).await?;
        Ok(size)
    }

    /// Rename a verified, fsynced file into its place and make that durable.
    pub(crate) async fn publish(
        &self,
        verified: &Path,
        digest: &Digest,
    ) -> Result<(), ContentError> {
        let dst = self.blob_path(digest);
        fs::rename(verified, &dst)
            .await
            .map_err(ContentError::io("rename into place", &dst))?;
        if let Some(parent) = dst.parent() {
            sync_dir(parent).await?;
        }
        tracing::debug!(%digest, "blob stored");
        Ok(())
    }

    /// Store small in-memory content (manifests) under its sha256 digest.
    pub async fn put_bytes(&self, data: &[u8]) -> Result<Digest, ContentError> {
        let digest = Digest::sha256_of(data);
        self.write_blob(&digest, Some(data.len() as u64), data)
            .await?;
        Ok(digest)
    }

    /// Remove a blob. Returns whether it existed.
    pub async fn delete(&self, digest: &Digest) -> Result<bool, ContentError> {
        let p = self.blob_path(digest);
        match fs::remove_file(&p).await {
            Ok(()) => {
                if let Some(parent) = p.parent() {
                    sync_dir(parent).await?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ContentError::io("delete", p)(e)),
        }
    }

    /// Every blob in the store. Files whose names are not valid digests
    /// (which berth never writes) are skipped with a warning.
    pub async fn list(&self) -> Result<Vec<BlobInfo>, ContentError> {
        let mut out = Vec::new();
        for alg in ALGORITHMS {
            let dir = self.root.join("blobs").join(alg.as_str());
            let mut rd = fs::read_dir(&dir)
                .await
                .map_err(ContentError::io("list", &dir))?;
            while let Some(entry) = rd
                .next_entry()
                .await
                .map_err(ContentError::io("list", &dir))?
            {
                let name = entry.file_name();
                let Some(digest) = name.to_str().and_then(|n| Digest::new(alg, n).ok()) else {
                    tracing::warn!(path = %entry.path().display(), "stray file in blob directory");
                    continue;
                };
                let Ok(meta) = entry.metadata().await else {
                    continue;
                };
                out.push(BlobInfo {
                    digest,
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        Ok(out)
    }

    /// Start a resumable ingest under `id`, or reopen it if it exists (after
    /// a restart, for instance).
    pub async fn ingest(&self, id: &str) -> Result<Ingest, ContentError> {
        Ingest::open(self.clone(), id).await
    }

    /// Forget an ingest and its data. Returns whether it existed.
    pub async fn remove_ingest(&self, id: &str) -> Result<bool, ContentError> {
        Ingest::remove(self, id).await
    }

    /// Ids of every ingest on disk.
    pub async fn ingest_ids(&self) -> Result<Vec<String>, ContentError> {
        let dir = self.ingest_dir();
        let mut rd = fs::read_dir(&dir)
            .await
            .map_err(ContentError::io("list", &dir))?;
        let mut ids = Vec::new();
        while let Some(e) = rd
            .next_entry()
            .await
            .map_err(ContentError::io("list", &dir))?
        {
            if let Some(n) = e.file_name().to_str() {
                ids.push(n.to_string());
            }
        }
        Ok(ids)
    }
}
