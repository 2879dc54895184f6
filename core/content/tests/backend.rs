#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! The content store in front of a backend: blobs go to the backend before
//! they are visible, come back verified, and a lying or broken backend can
//! never make a wrong blob visible.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use berth_content::{
    BackendBlob, BackendError, BackendWriter, BlobBackend, ContentError, ContentStore,
};
use berth_oci::Digest;
use tokio::io::AsyncReadExt;

/// A reference backend kept in memory, with switches to make it lie or fail.
#[derive(Default, Clone)]
struct MemBackend {
    blobs: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    corrupt_reads: Arc<Mutex<bool>>,
    fail_commits: Arc<Mutex<bool>>,
}

struct MemWriter {
    backend: MemBackend,
    key: String,
    buf: Vec<u8>,
}

impl BackendWriter for MemWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), BackendError> {
        self.buf.extend_from_slice(chunk);
        Ok(())
    }
    fn commit(self: Box<Self>, size: u64) -> Result<(), BackendError> {
        if *self.backend.fail_commits.lock().unwrap() {
            return Err(BackendError::Io("disk full".into()));
        }
        assert_eq!(size, self.buf.len() as u64);
        self.backend
            .blobs
            .lock()
            .unwrap()
            .insert(self.key, self.buf);
        Ok(())
    }
    fn abort(self: Box<Self>) {}
}

impl BlobBackend for MemBackend {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, BackendError> {
        Ok(self
            .blobs
            .lock()
            .unwrap()
            .get(&digest.to_string())
            .map(|b| b.len() as u64))
    }
    fn read(&self, digest: &Digest, offset: u64, len: u32) -> Result<Vec<u8>, BackendError> {
        let blobs = self.blobs.lock().unwrap();
        let b = blobs
            .get(&digest.to_string())
            .ok_or_else(|| BackendError::NotFound(digest.to_string()))?;
        let start = (offset as usize).min(b.len());
        let end = (start + len as usize).min(b.len());
        let mut out = b[start..end].to_vec();
        if *self.corrupt_reads.lock().unwrap()
            && let Some(first) = out.first_mut()
        {
            *first ^= 0xff;
        }
        Ok(out)
    }
    fn begin_write(
        &self,
        digest: &Digest,
        _size: u64,
    ) -> Result<Box<dyn BackendWriter>, BackendError> {
        Ok(Box::new(MemWriter {
            backend: self.clone(),
            key: digest.to_string(),
            buf: Vec::new(),
        }))
    }
    fn delete(&self, digest: &Digest) -> Result<bool, BackendError> {
        Ok(self
            .blobs
            .lock()
            .unwrap()
            .remove(&digest.to_string())
            .is_some())
    }
    fn list(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<BackendBlob>, BackendError> {
        let after = after.map(|d| d.to_string()).unwrap_or_default();
        Ok(self
            .blobs
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str() > after.as_str())
            .take(limit as usize)
            .map(|(k, v)| BackendBlob {
                digest: k.parse().unwrap(),
                size: v.len() as u64,
            })
            .collect())
    }
}

#[test]
fn the_reference_backend_passes_the_conformance_suite() {
    berth_content::conformance::run(&MemBackend::default());
}

async fn store_with(backend: &MemBackend) -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path())
        .await
        .unwrap()
        .with_backend(Arc::new(backend.clone()));
    (dir, store)
}

#[tokio::test]
async fn blobs_reach_the_backend_and_come_back_verified_into_an_empty_cache() {
    let backend = MemBackend::default();
    let data = vec![7u8; 3 * 1024 * 1024 + 11];
    let digest = Digest::sha256_of(&data);
    {
        let (_dir, store) = store_with(&backend).await;
        store
            .write_blob(&digest, Some(data.len() as u64), &data[..])
            .await
            .unwrap();
        assert!(store.blob_path(&digest).exists());
    }
    assert_eq!(backend.stat(&digest).unwrap(), Some(data.len() as u64));

    // A fresh cache: the blob exists only in the backend.
    let (_dir, store) = store_with(&backend).await;
    assert!(!store.blob_path(&digest).exists());
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    let (mut f, size) = store.open_blob(&digest).await.unwrap();
    let mut back = Vec::new();
    f.read_to_end(&mut back).await.unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(back, data);
    assert!(store.blob_path(&digest).exists(), "fetched into the cache");
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1, "one blob, not listed twice: {listed:?}");
}

#[tokio::test]
async fn a_backend_returning_other_bytes_never_makes_them_visible() {
    let backend = MemBackend::default();
    let data = b"the real content".to_vec();
    let digest = Digest::sha256_of(&data);
    backend
        .blobs
        .lock()
        .unwrap()
        .insert(digest.to_string(), data.clone());
    *backend.corrupt_reads.lock().unwrap() = true;

    let (_dir, store) = store_with(&backend).await;
    let err = store.open_blob(&digest).await.unwrap_err();
    assert!(matches!(err, ContentError::Backend { .. }), "{err}");
    assert!(err.to_string().contains("hashing to"), "{err}");
    assert!(!store.blob_path(&digest).exists(), "nothing cached");
    assert!(
        std::fs::read_dir(store.root().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temp left"
    );
}

#[tokio::test]
async fn a_failing_backend_fails_the_write_and_nothing_is_visible() {
    let backend = MemBackend::default();
    *backend.fail_commits.lock().unwrap() = true;
    let (_dir, store) = store_with(&backend).await;
    let data = b"will not be stored";
    let digest = Digest::sha256_of(data);
    let err = store
        .write_blob(&digest, None, &data[..])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert!(!store.blob_path(&digest).exists());

    // The same path with an ingest (chunked upload).
    let mut ingest = store.ingest("up1").await.unwrap();
    ingest.append(&data[..]).await.unwrap();
    assert!(ingest.commit(&digest, None).await.is_err());
    assert_eq!(store.stat(&digest).await.unwrap(), None);
}

#[tokio::test]
async fn delete_reaches_the_backend() {
    let backend = MemBackend::default();
    let (_dir, store) = store_with(&backend).await;
    let digest = store.put_bytes(b"to delete").await.unwrap();
    assert!(store.delete(&digest).await.unwrap());
    assert_eq!(backend.stat(&digest).unwrap(), None);
    assert_eq!(store.stat(&digest).await.unwrap(), None);
}
