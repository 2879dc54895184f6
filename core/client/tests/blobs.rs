//! Blob operations against a real docker-registry (CNCF Distribution 2.8).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use berth_client::{BlobOutcome, ClientError, MountOutcome, Repository};
use berth_oci::{Digest, ErrorCode};
use bytes::Bytes;
use common::{DirStore, Registry, client, client_with, data, no_progress};

#[tokio::test]
async fn monolithic_upload_head_get_and_range() {
    let reg = Registry::start();
    let c = client();
    let repo = Repository::new(&reg.addr, "mono/app").unwrap();
    let blob = data(200_000, 1);
    let d = Digest::sha256_of(&blob);
    assert_eq!(c.blob_exists(&repo, &d).await.unwrap(), None);
    c.upload_monolithic(
        &repo,
        &d,
        blob.len() as u64,
        std::io::Cursor::new(blob.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        c.blob_exists(&repo, &d).await.unwrap().unwrap().size,
        200_000
    );
    let mut out = Vec::new();
    let n = c
        .get_blob(&repo, &d, Some(200_000), &mut out)
        .await
        .unwrap();
    assert_eq!(n, 200_000);
    assert_eq!(out, blob);
    let mut part = Vec::new();
    c.get_blob_range(&repo, &d, 1000..5000, &mut part)
        .await
        .unwrap();
    assert_eq!(part, &blob[1000..5000]);
}

#[tokio::test]
async fn chunked_upload_in_many_patches() {
    let reg = Registry::start();
    let c = client_with(|cfg| cfg.chunk_size = 64 * 1024);
    let repo = Repository::new(&reg.addr, "chunked").unwrap();
    // Not a multiple of the chunk size, so the last PATCH is short.
    let blob = data(5 * 64 * 1024 + 123, 2);
    let d = Digest::sha256_of(&blob);
    c.upload_chunked(&repo, &d, std::io::Cursor::new(blob.clone()))
        .await
        .unwrap();
    let mut out = Vec::new();
    c.get_blob(&repo, &d, None, &mut out).await.unwrap();
    assert_eq!(out, blob);
    // An exact multiple, and an empty blob, take the same path.
    for len in [2 * 64 * 1024, 0] {
        let blob = data(len, 3);
        let d = Digest::sha256_of(&blob);
        c.upload_chunked(&repo, &d, std::io::Cursor::new(blob.clone()))
            .await
            .unwrap();
        assert_eq!(
            c.blob_exists(&repo, &d).await.unwrap().unwrap().size,
            len as u64
        );
    }
}

#[tokio::test]
async fn push_blob_skips_what_the_registry_has_and_mounts_across_repos() {
    let reg = Registry::start();
    // Everything above 100 kB goes chunked: both paths of push_blob run.
    let c = client_with(|cfg| {
        cfg.monolithic_max = 100_000;
        cfg.chunk_size = 50_000;
    });
    let src = tempfile::tempdir().unwrap();
    let store = DirStore::new(src.path());
    let small = store.put(&data(1000, 4));
    let big = store.put(&data(260_000, 5));
    let a = Repository::new(&reg.addr, "team/a").unwrap();
    let b = Repository::new(&reg.addr, "team/b").unwrap();
    let p = no_progress();
    for d in [&small, &big] {
        assert_eq!(
            c.push_blob(&a, d, &store, None, &p).await.unwrap(),
            BlobOutcome::Transferred
        );
        assert_eq!(
            c.push_blob(&a, d, &store, None, &p).await.unwrap(),
            BlobOutcome::Present
        );
    }
    assert_eq!(
        c.push_blob(&b, &big, &store, Some("team/a"), &p)
            .await
            .unwrap(),
        BlobOutcome::Mounted
    );
    assert_eq!(
        c.blob_exists(&b, &big).await.unwrap().unwrap().size,
        260_000
    );
    // A mount from a repository lacking the blob falls back to an upload
    // into the session the registry opened.
    let c_only = store.put(&data(5000, 6));
    match c.mount_blob(&b, &c_only, "team/nothing").await.unwrap() {
        MountOutcome::Upload(session) => {
            c.put_whole(
                session,
                &c_only,
                5000,
                std::io::Cursor::new(store.get(&c_only).unwrap()),
            )
            .await
            .unwrap();
        }
        MountOutcome::Mounted => panic!("mounted a blob no repository has"),
    }
    assert!(c.blob_exists(&b, &c_only).await.unwrap().is_some());
}

#[tokio::test]
async fn wrong_digest_on_upload_is_refused_by_the_registry() {
    let reg = Registry::start();
    let c = client();
    let repo = Repository::new(&reg.addr, "wrong").unwrap();
    let blob = data(10_000, 7);
    let claimed = Digest::sha256_of(b"something else");
    let err = c
        .upload_monolithic(
            &repo,
            &claimed,
            blob.len() as u64,
            std::io::Cursor::new(blob.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::DigestInvalid), "{err}");
    assert_eq!(err.status(), Some(400));
    let text = err.to_string();
    assert!(
        text.contains("DIGEST_INVALID") && text.contains("wrong"),
        "{text}"
    );
    let err = c
        .upload_chunked(&repo, &claimed, std::io::Cursor::new(blob))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::DigestInvalid), "{err}");
    assert_eq!(c.blob_exists(&repo, &claimed).await.unwrap(), None);
}

#[tokio::test]
async fn corrupted_blob_on_the_registry_is_detected_while_streaming() {
    let reg = Registry::start();
    let c = client();
    let repo = Repository::new(&reg.addr, "corrupt").unwrap();
    let blob = data(100_000, 8);
    let d = Digest::sha256_of(&blob);
    c.upload_monolithic(
        &repo,
        &d,
        blob.len() as u64,
        std::io::Cursor::new(blob.clone()),
    )
    .await
    .unwrap();
    // Flip bytes in the registry's own copy, keeping the size.
    let path = reg.blob_data_path(&d);
    let mut bad = std::fs::read(&path).unwrap();
    bad[50_000] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();

    let mut out = Vec::new();
    let err = c
        .get_blob(&repo, &d, Some(100_000), &mut out)
        .await
        .unwrap_err();
    match &err {
        ClientError::DigestMismatch { digest, actual, .. } => {
            assert_eq!(digest, &d);
            assert_eq!(actual, &Digest::sha256_of(&bad));
        }
        other => panic!("expected DigestMismatch, got {other}"),
    }
    // Through a sink: nothing is kept.
    let dst = tempfile::tempdir().unwrap();
    let sink = DirStore::new(dst.path());
    let err = c
        .pull_blob(&repo, &d, 100_000, &sink, &no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::DigestMismatch { .. }), "{err}");
    assert_eq!(sink.count(), 0);
    // A wrong expected size is caught too.
    std::fs::write(&path, &blob).unwrap();
    let err = c
        .get_blob(&repo, &d, Some(99_999), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::SizeMismatch { .. }), "{err}");
}

#[tokio::test]
async fn interrupted_chunked_upload_resumes_from_the_registry_offset() {
    let reg = Registry::start();
    let repo = Repository::new(&reg.addr, "resume/me").unwrap();
    let blob = data(300_000, 9);
    let d = Digest::sha256_of(&blob);
    let location = {
        // First process: sends 120 000 bytes, then "crashes".
        let c = client();
        let mut session = c.start_upload(&repo).await.unwrap();
        c.upload_chunk(&mut session, Bytes::copy_from_slice(&blob[..70_000]))
            .await
            .unwrap();
        c.upload_chunk(&mut session, Bytes::copy_from_slice(&blob[70_000..120_000]))
            .await
            .unwrap();
        assert_eq!(session.offset(), 120_000);
        session.location().to_string()
    };
    // Second process: knows only the upload URL.
    let c = client_with(|cfg| cfg.chunk_size = 64 * 1024);
    let session = c.resume_upload(&repo, &location).await.unwrap();
    assert_eq!(session.offset(), 120_000);
    let rest = std::io::Cursor::new(blob[120_000..].to_vec());
    c.continue_upload(session, &d, rest).await.unwrap();
    let mut out = Vec::new();
    c.get_blob(&repo, &d, Some(300_000), &mut out)
        .await
        .unwrap();
    assert_eq!(out, blob);
    // A session that no longer exists is reported, not silently restarted.
    let err = c.resume_upload(&repo, &location).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
}
