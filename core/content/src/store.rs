//! Whole-blob operations: write, stat, read (ranges), list, delete.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_oci::{Algorithm, Digest};
use tokio::fs::{self, File};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use std::sync::Arc;

use crate::ingest::Ingest;
use crate::remote;
use crate::{BackendError, BlobBackend, ContentError};

/// Where a verified blob is made visible.
#[derive(Clone, Copy)]
enum Publish {
    /// The backend (if any), then here: new content.
    Everywhere,
    /// Here only: content fetched from the backend.
    LocalOnly,
}
use crate::write::{hash_copy, sync_dir};

/// One blob as listed by [`ContentStore::list`].
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
    pub modified: SystemTime,
}

/// A content-addressed store rooted at a directory. Cheap to clone.
///
/// With a [`BlobBackend`] (see [`ContentStore::with_backend`]) the backend
/// is where blobs are kept and the directory is a verified write-through
/// cache in front of it: a blob is pushed to the backend before it becomes
/// visible here, and a blob only the backend has is fetched (and hashed)
/// on first read.
#[derive(Clone)]
pub struct ContentStore {
    root: PathBuf,
    backend: Option<Arc<dyn BlobBackend>>,
}

impl std::fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStore")
            .field("root", &self.root)
            .field("backend", &self.backend.is_some())
            .finish()
    }
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

/// The store holds what local users must not read (the blobs of private
/// repositories, uploads in flight): its directories are 0700 and its
/// files 0600 from their creation, whatever the umask.
pub(crate) const DIR_MODE: u32 = 0o700;
pub(crate) const FILE_MODE: u32 = 0o600;

async fn create_private_dir(d: &Path) -> Result<(), ContentError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(d)
        .await
        .map_err(ContentError::io("create directory", d))
}

impl ContentStore {
    /// Open (creating if needed) the store at `root`, removing whatever a
    /// crash left in `tmp/`. Ingests are kept: they are resumable uploads.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, ContentError> {
        let root = root.into();
        for alg in ALGORITHMS {
            create_private_dir(&root.join("blobs").join(alg.as_str())).await?;
        }
        let tmp = root.join("tmp");
        if fs::try_exists(&tmp).await.unwrap_or(false) {
            fs::remove_dir_all(&tmp)
                .await
                .map_err(ContentError::io("clean up", &tmp))?;
        }
        for d in [tmp, root.join("ingest")] {
            create_private_dir(&d).await?;
        }
        Ok(ContentStore {
            root,
            backend: None,
        })
    }

    /// Keeps blobs in `backend` from now on, with this store's directory
    /// as the verified cache in front of it.
    pub fn with_backend(mut self, backend: Arc<dyn BlobBackend>) -> Self {
        self.backend = Some(backend);
        self
    }

    pub fn has_backend(&self) -> bool {
        self.backend.is_some()
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
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match &self.backend {
                Some(b) => {
                    let (b, d) = (b.clone(), digest.clone());
                    remote::blocking(digest, move || b.stat(&d)).await
                }
                None => Ok(None),
            },
            Err(e) => Err(ContentError::io("stat", p)(e)),
        }
    }

    /// Brings a blob only the backend has into the local cache, verified.
    /// False when there is no backend or it does not have the blob either.
    async fn fetch(&self, digest: &Digest) -> Result<bool, ContentError> {
        let Some(backend) = self.backend.clone() else {
            return Ok(false);
        };
        let (b, d) = (backend.clone(), digest.clone());
        let Some(size) = remote::blocking(digest, move || b.stat(&d)).await? else {
            return Ok(false);
        };
        let src = remote::reader(backend, digest.clone(), size);
        let tmp = self.tmp_path();
        let result = self
            .write_verified(&tmp, digest, Some(size), src, Publish::LocalOnly)
            .await;
        if result.is_err() {
            let _ = fs::remove_file(&tmp).await;
        }
        match result {
            Ok(_) => Ok(true),
            Err(ContentError::DigestMismatch { expected, actual }) => {
                tracing::error!(%expected, %actual, "storage backend returned corrupt content");
                Err(ContentError::Backend {
                    digest: expected,
                    source: BackendError::Io(format!(
                        "it returned content hashing to {actual}; the blob was not used"
                    )),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Open the whole blob for reading; returns the file and its size.
    pub async fn open_blob(&self, digest: &Digest) -> Result<(File, u64), ContentError> {
        let p = self.blob_path(digest);
        let f = match File::open(&p).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.fetch(digest).await? {
                    return Err(ContentError::NotFound(digest.clone()));
                }
                File::open(&p).await.map_err(ContentError::io("open", &p))?
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
            .write_verified(&tmp, expected, expected_size, src, Publish::Everywhere)
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
        publish: Publish,
    ) -> Result<u64, ContentError> {
        let f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(tmp)
            .await
            .map_err(ContentError::io("create", tmp))?;
        let mut hasher = expected.algorithm().hasher();
        let mut size = 0;
        hash_copy(src, &f, &mut hasher, &mut size, tmp).await?;
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
        match publish {
            Publish::Everywhere => self.publish(tmp, expected).await?,
            Publish::LocalOnly => self.publish_local(tmp, expected).await?,
        }
        Ok(size)
    }

    /// Make a verified, fsynced file a blob: into the backend first (if
    /// any), then renamed into its place here, durably.
    pub(crate) async fn publish(
        &self,
        verified: &Path,
        digest: &Digest,
    ) -> Result<(), ContentError> {
        if let Some(backend) = &self.backend {
            remote::push(backend.clone(), verified.to_path_buf(), digest.clone()).await?;
        }
        self.publish_local(verified, digest).await
    }

    async fn publish_local(&self, verified: &Path, digest: &Digest) -> Result<(), ContentError> {
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
        let mut existed = false;
        if let Some(b) = &self.backend {
            let (b, d) = (b.clone(), digest.clone());
            existed = remote::blocking(digest, move || b.delete(&d)).await?;
        }
        let local = self.delete_local(digest).await?;
        Ok(existed || local)
    }

    async fn delete_local(&self, digest: &Digest) -> Result<bool, ContentError> {
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
        if let Some(backend) = &self.backend {
            self.list_backend(backend.clone(), &mut out).await?;
        }
        Ok(out)
    }

    /// Adds the blobs only the backend has. They count as old: whether one
    /// is garbage is decided by references, not by age.
    async fn list_backend(
        &self,
        backend: Arc<dyn BlobBackend>,
        out: &mut Vec<BlobInfo>,
    ) -> Result<(), ContentError> {
        const PAGE: u32 = 1000;
        let mut seen: std::collections::HashSet<Digest> =
            out.iter().map(|b| b.digest.clone()).collect();
        let mut after: Option<Digest> = None;
        loop {
            let b = backend.clone();
            let cursor = after.clone();
            let label = cursor.clone().unwrap_or_else(|| Digest::sha256_of(b""));
            let page = remote::blocking(&label, move || b.list(cursor.as_ref(), PAGE)).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.digest.clone());
            for blob in page {
                if seen.insert(blob.digest.clone()) {
                    out.push(BlobInfo {
                        digest: blob.digest,
                        size: blob.size,
                        modified: SystemTime::UNIX_EPOCH,
                    });
                }
            }
        }
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
