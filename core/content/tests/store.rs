//! The content store on a real file system: verification, atomicity,
//! concurrency, ranges and resumable ingests.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use berth_content::{ContentError, ContentStore};
use berth_oci::{Algorithm, Digest};
use tokio::io::AsyncReadExt;

fn sha256(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

async fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(dir.path().join("content"))
        .await
        .unwrap();
    (dir, s)
}

/// Nothing but finished blobs: tmp/ empty, every blob file hashes to its name.
async fn assert_only_verified_blobs(s: &ContentStore) {
    let tmp: Vec<_> = std::fs::read_dir(s.root().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "temp files left behind: {tmp:?}");
    for b in s.list().await.unwrap() {
        let data = std::fs::read(s.blob_path(&b.digest)).unwrap();
        assert_eq!(b.digest.of_same_kind(&data), b.digest);
    }
}

#[tokio::test]
async fn write_verify_read() {
    let (_d, s) = store().await;
    let data = vec![7u8; 1_000_000];
    let d = sha256(&data);
    assert_eq!(s.stat(&d).await.unwrap(), None);
    assert_eq!(
        s.write_blob(&d, Some(data.len() as u64), &data[..])
            .await
            .unwrap(),
        1_000_000
    );
    assert_eq!(s.stat(&d).await.unwrap(), Some(1_000_000));
    let (mut f, size) = s.open_blob(&d).await.unwrap();
    let mut back = Vec::new();
    f.read_to_end(&mut back).await.unwrap();
    assert_eq!((size, back), (1_000_000, data));
}

#[tokio::test]
async fn sha512_blobs() {
    let (_d, s) = store().await;
    let mut h = Algorithm::Sha512.hasher();
    h.update(b"abc");
    let d = h.finish();
    s.write_blob(&d, None, &b"abc"[..]).await.unwrap();
    assert_eq!(s.stat(&d).await.unwrap(), Some(3));
    assert!(s.blob_path(&d).to_string_lossy().contains("/sha512/"));
}

#[tokio::test]
async fn wrong_digest_or_size_leaves_nothing() {
    let (_d, s) = store().await;
    let claimed = sha256(b"what the client said");
    let err = s
        .write_blob(&claimed, None, &b"something else"[..])
        .await
        .unwrap_err();
    assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    assert_eq!(s.stat(&claimed).await.unwrap(), None);
    let d = sha256(b"12345");
    let err = s.write_blob(&d, Some(4), &b"12345"[..]).await.unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 4,
                actual: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.stat(&d).await.unwrap(), None);
    assert!(s.list().await.unwrap().is_empty());
    assert_only_verified_blobs(&s).await;
}

#[tokio::test]
async fn failing_source_leaves_nothing() {
    let (_d, s) = store().await;
    struct Broken(usize);
    impl tokio::io::AsyncRead for Broken {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("connection reset")));
            }
            self.0 -= 1;
            buf.put_slice(&[1; 1000]);
            std::task::Poll::Ready(Ok(()))
        }
    }
    let d = sha256(&[1; 5000]);
    let err = s.write_blob(&d, None, Broken(3)).await.unwrap_err();
    assert!(matches!(err, ContentError::Source(_)), "{err}");
    assert_eq!(s.stat(&d).await.unwrap(), None);
    assert_only_verified_blobs(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_digest() {
    let (_d, s) = store().await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let d = sha256(&data);
    let data = std::sync::Arc::new(data);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, d, data) = (s.clone(), d.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            s.write_blob(&d, None, &data[..]).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 3_000_000);
    }
    assert_eq!(s.list().await.unwrap().len(), 1);
    assert_only_verified_blobs(&s).await;
}

#[tokio::test]
async fn ranges() {
    let (_d, s) = store().await;
    let d = s.put_bytes(b"0123456789").await.unwrap();
    let mut r = s.read_range(&d, 2, 5).await.unwrap();
    let mut out = String::new();
    r.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "2345");
    assert!(matches!(
        s.read_range(&d, 5, 10).await,
        Err(ContentError::RangeNotSatisfiable { .. })
    ));
    assert!(matches!(
        s.read_range(&d, 6, 5).await,
        Err(ContentError::RangeNotSatisfiable { .. })
    ));
}

#[tokio::test]
async fn ingest_resumes_after_reopen_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    let data: Vec<u8> = (0..600_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha256(&data);
    {
        let s = ContentStore::open(&root).await.unwrap();
        let mut ing = s.ingest("upload-1").await.unwrap();
        assert_eq!(ing.append(&data[..250_000]).await.unwrap(), 250_000);
        // dropped here as if the daemon died
    }
    let s = ContentStore::open(&root).await.unwrap();
    assert_eq!(s.ingest_ids().await.unwrap(), vec!["upload-1".to_string()]);
    let mut ing = s.ingest("upload-1").await.unwrap();
    assert_eq!(ing.offset(), 250_000);
    ing.append(&data[250_000..]).await.unwrap();
    assert_eq!(ing.commit(&d, Some(600_000)).await.unwrap(), 600_000);
    assert_eq!(s.stat(&d).await.unwrap(), Some(600_000));
    assert!(s.ingest_ids().await.unwrap().is_empty());
    assert_only_verified_blobs(&s).await;
}

#[tokio::test]
async fn ingest_cuts_a_chunk_its_request_never_acknowledged() {
    // A request dropped mid-body can leave the chunk being written on disk
    // after the ingest's offset and hash stopped counting. The next append
    // must not build on it, or the upload could never match its digest.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    let s = ContentStore::open(&root).await.unwrap();
    let data: Vec<u8> = (0..600_000u32).map(|i| (i * 11 % 253) as u8).collect();
    let d = sha256(&data);
    let mut ing = s.ingest("abandoned").await.unwrap();
    assert_eq!(ing.append(&data[..250_000]).await.unwrap(), 250_000);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("ingest").join("abandoned"))
        .unwrap();
    std::io::Write::write_all(&mut f, &[0xAA; 70_000]).unwrap();
    assert_eq!(ing.offset(), 250_000);
    ing.append(&data[250_000..]).await.unwrap();
    assert_eq!(ing.commit(&d, Some(600_000)).await.unwrap(), 600_000);
    assert_only_verified_blobs(&s).await;
}

#[tokio::test]
async fn ingest_wrong_digest_publishes_nothing() {
    let (_d, s) = store().await;
    let mut ing = s.ingest("u2").await.unwrap();
    ing.append(&b"abc"[..]).await.unwrap();
    let wrong = sha256(b"abd");
    assert!(matches!(
        ing.commit(&wrong, None).await,
        Err(ContentError::DigestMismatch { .. })
    ));
    assert_eq!(s.stat(&wrong).await.unwrap(), None);
    assert!(s.remove_ingest("u2").await.unwrap());
    assert!(matches!(
        s.ingest("../x").await,
        Err(ContentError::InvalidIngestId(_))
    ));
}

#[tokio::test]
async fn open_removes_crash_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    let s = ContentStore::open(&root).await.unwrap();
    std::fs::write(root.join("tmp").join("half-written"), b"partial").unwrap();
    drop(s);
    let s = ContentStore::open(&root).await.unwrap();
    assert_only_verified_blobs(&s).await;
}

#[tokio::test]
async fn delete() {
    let (_d, s) = store().await;
    let d = s.put_bytes(b"x").await.unwrap();
    assert!(s.delete(&d).await.unwrap());
    assert!(!s.delete(&d).await.unwrap());
    assert!(matches!(
        s.open_blob(&d).await,
        Err(ContentError::NotFound(_))
    ));
}

/// Blobs and uploads are for berthd alone, whatever the umask: directories
/// 0700, files 0600 (private repositories live here).
#[tokio::test]
async fn the_store_is_private_from_creation() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, s) = store().await;
    let data = b"private layer".to_vec();
    let d = sha256(&data);
    s.write_blob(&d, Some(data.len() as u64), &data[..])
        .await
        .unwrap();
    let mut ing = s.ingest("upload-1").await.unwrap();
    ing.append(&b"half"[..]).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for dir in [
        s.root().to_path_buf(),
        s.root().join("blobs"),
        s.root().join("blobs/sha256"),
        s.root().join("ingest"),
        s.root().join("tmp"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [s.blob_path(&d), s.root().join("ingest/upload-1")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
