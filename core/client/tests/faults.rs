//! Retries, backoff and upload resumption, with a real docker-registry
//! behind a proxy that breaks chosen requests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use berth_client::{BlobOutcome, ClientError, Repository};
use berth_oci::Digest;
use common::faulty_proxy::{self, Fault};
use common::{DirStore, Registry, client, client_with, data, no_progress};

#[tokio::test]
async fn idempotent_requests_retry_503_and_429_a_bounded_number_of_times() {
    let reg = Registry::start();
    let (addr, faults) = faulty_proxy::start(reg.addr.clone()).await;
    let c = client();
    let repo = Repository::new(&addr, "faults/get").unwrap();
    let blob = data(50_000, 21);
    let d = Digest::sha256_of(&blob);
    c.upload_monolithic(
        &repo,
        &d,
        blob.len() as u64,
        std::io::Cursor::new(blob.clone()),
    )
    .await
    .unwrap();

    let get = format!("GET /v2/faults/get/blobs/{d}");
    faults.add(&get, Fault::Status(503), 2);
    faults.add("HEAD ", Fault::Status(429), 1);
    let mut out = Vec::new();
    c.get_blob(&repo, &d, None, &mut out).await.unwrap();
    assert_eq!(out, blob);
    assert_eq!(faults.count(&get), 3);
    assert!(c.blob_exists(&repo, &d).await.unwrap().is_some());
    assert_eq!(faults.count("HEAD "), 2);

    // A registry that keeps failing is given up on after max_attempts.
    faults.add(&get, Fault::Status(503), 100);
    let err = c
        .get_blob(&repo, &d, None, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    assert_eq!(faults.count(&get), 3 + 4);
}

#[tokio::test]
async fn a_failed_patch_is_resumed_from_the_registry_offset_not_resent() {
    let reg = Registry::start();
    let (addr, faults) = faulty_proxy::start(reg.addr.clone()).await;
    let c = client_with(|cfg| cfg.chunk_size = 64 * 1024);
    let repo = Repository::new(&addr, "faults/patch").unwrap();
    let blob = data(200_000, 22);
    let d = Digest::sha256_of(&blob);
    // The second PATCH is refused before it reaches the registry.
    faults.add("PATCH ", Fault::Status(503), 0);
    let mut session = c.start_upload(&repo).await.unwrap();
    c.upload_chunk(&mut session, blob[..65_536].to_vec().into())
        .await
        .unwrap();
    faults.add("PATCH ", Fault::Status(503), 1);
    c.continue_upload(session, &d, std::io::Cursor::new(blob[65_536..].to_vec()))
        .await
        .unwrap();
    let seen = faults.seen.lock().unwrap().clone();
    let failed = seen.iter().position(|l| l.starts_with("PATCH ")).unwrap();
    let failed = failed
        + 1
        + seen[failed + 1..]
            .iter()
            .position(|l| l.starts_with("PATCH "))
            .unwrap();
    assert!(
        seen[failed + 1].starts_with("GET /v2/faults/patch/blobs/uploads/"),
        "after a failed PATCH the client must ask for the offset first: {seen:#?}"
    );
    // 4 chunks for 200 000 bytes, plus the one refused.
    assert_eq!(faults.count("PATCH "), 5);
    let mut out = Vec::new();
    c.get_blob(&repo, &d, Some(200_000), &mut out)
        .await
        .unwrap();
    assert_eq!(out, blob);
}

#[tokio::test]
async fn uploads_cut_mid_body_start_over_from_the_source() {
    let reg = Registry::start();
    let (addr, faults) = faulty_proxy::start(reg.addr.clone()).await;
    let c = client_with(|cfg| {
        cfg.chunk_size = 64 * 1024;
        cfg.monolithic_max = 100_000;
    });
    let src = tempfile::tempdir().unwrap();
    let store = DirStore::new(src.path());
    let repo = Repository::new(&addr, "faults/cut").unwrap();
    let p = no_progress();

    // Chunked: the connection dies inside the first PATCH body.
    let big = store.put(&data(300_000, 23));
    faults.add("PATCH ", Fault::CutAfter(10_000), 1);
    assert_eq!(
        c.push_blob(&repo, &big, &store, None, &p).await.unwrap(),
        BlobOutcome::Transferred
    );
    let mut out = Vec::new();
    c.get_blob(&repo, &big, Some(300_000), &mut out)
        .await
        .unwrap();
    assert_eq!(Some(out), store.get(&big));

    // Monolithic: the connection dies inside the PUT body; the HEAD that
    // follows shows the blob did not land, so the upload starts over.
    let small = store.put(&data(40_000, 24));
    let puts_before = faults.count("PUT /v2/faults/cut/blobs/uploads/");
    faults.add(
        "PUT /v2/faults/cut/blobs/uploads/",
        Fault::CutAfter(5_000),
        1,
    );
    assert_eq!(
        c.push_blob(&repo, &small, &store, None, &p).await.unwrap(),
        BlobOutcome::Transferred
    );
    assert_eq!(
        faults.count("PUT /v2/faults/cut/blobs/uploads/"),
        puts_before + 2
    );
    let mut out = Vec::new();
    c.get_blob(&repo, &small, Some(40_000), &mut out)
        .await
        .unwrap();
    assert_eq!(Some(out), store.get(&small));

    // A plain upload call does not restart by itself: the error surfaces.
    let third = data(20_000, 25);
    let td = Digest::sha256_of(&third);
    faults.add(
        "PUT /v2/faults/cut/blobs/uploads/",
        Fault::CutAfter(1_000),
        1,
    );
    let err = c
        .upload_monolithic(&repo, &td, third.len() as u64, std::io::Cursor::new(third))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Http { .. }), "{err}");
}
