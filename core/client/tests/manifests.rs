//! Manifests, tags, referrers, catalog and whole-image pull/push against a
//! real docker-registry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::sync::Mutex;

use berth_client::{BlobOutcome, ClientError, Platform, Progress, Repository};
use berth_oci::{Digest, ErrorCode, Reference, media_types};
use bytes::Bytes;
use common::{DirStore, Registry, client, data, no_progress};
use serde_json::json;

/// Store a config, `layers` layers and an image manifest; returns the
/// manifest digest.
fn make_image(store: &DirStore, seed: u64, layers: usize) -> Digest {
    let config = json!({"architecture": "amd64", "os": "linux", "seed": seed});
    let config = serde_json::to_vec(&config).unwrap();
    let cd = store.put(&config);
    let layers: Vec<_> = (0..layers)
        .map(|i| {
            let bytes = data(30_000 + i * 1000, seed * 100 + i as u64);
            let d = store.put(&bytes);
            json!({"mediaType": media_types::OCI_LAYER_GZIP, "digest": d.to_string(), "size": bytes.len()})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {"mediaType": media_types::OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": layers,
    });
    store.put(&serde_json::to_vec_pretty(&manifest).unwrap())
}

fn index_of(store: &DirStore, entries: &[(Digest, &str)]) -> Digest {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(d, arch)| {
            let size = store.get(d).unwrap().len();
            json!({"mediaType": media_types::OCI_MANIFEST, "digest": d.to_string(), "size": size,
                   "platform": {"os": "linux", "architecture": arch}})
        })
        .collect();
    let index =
        json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": manifests});
    store.put(&serde_json::to_vec(&index).unwrap())
}

#[tokio::test]
async fn manifest_put_get_head_byte_for_byte() {
    let reg = Registry::start();
    let c = client();
    let repo = Repository::new(&reg.addr, "m/app").unwrap();
    let src = tempfile::tempdir().unwrap();
    let store = DirStore::new(src.path());
    let md = make_image(&store, 1, 2);
    let p = no_progress();
    // The registry refuses a manifest whose blobs it lacks.
    let bytes = Bytes::from(store.get(&md).unwrap());
    let err = c
        .put_manifest(&repo, "v1", media_types::OCI_MANIFEST, bytes.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ManifestBlobUnknown), "{err}");
    let summary = berth_oci::ManifestSummary::parse(None, &bytes).unwrap();
    for d in summary.blob_refs() {
        c.push_blob(&repo, &d.digest, &store, None, &p)
            .await
            .unwrap();
    }
    let pushed = c
        .put_manifest(&repo, "v1", media_types::OCI_MANIFEST, bytes.clone())
        .await
        .unwrap();
    assert_eq!(pushed, md);
    for reference in ["v1".to_string(), md.to_string()] {
        let got = c.get_manifest(&repo, &reference).await.unwrap();
        assert_eq!(
            got.bytes, bytes,
            "pretty-printed JSON came back reformatted"
        );
        assert_eq!(got.digest, md);
        assert_eq!(got.media_type, media_types::OCI_MANIFEST);
        let head = c.head_manifest(&repo, &reference).await.unwrap().unwrap();
        assert_eq!(head.digest, Some(md.clone()));
        assert_eq!(head.size, bytes.len() as u64);
    }
    assert!(c.head_manifest(&repo, "nope").await.unwrap().is_none());
    let err = c.get_manifest(&repo, "nope").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ManifestUnknown), "{err}");
    // Pushing by digest checks the digest before anything is sent.
    let wrong = Digest::sha256_of(b"x");
    let err = c
        .put_manifest(&repo, &wrong.to_string(), media_types::OCI_MANIFEST, bytes)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::DigestMismatch { .. }), "{err}");
    c.delete_manifest(&repo, &md).await.unwrap();
    assert!(
        c.head_manifest(&repo, &md.to_string())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn tag_listing_follows_link_pagination() {
    let reg = Registry::start();
    let c = client();
    let src = tempfile::tempdir().unwrap();
    let store = DirStore::new(src.path());
    let md = make_image(&store, 2, 1);
    let base: Reference = format!("{}/pages/app:t0", reg.addr).parse().unwrap();
    c.push_image(&base, &md, &store, None, no_progress())
        .await
        .unwrap();
    let repo = Repository::of(&base);
    let bytes = Bytes::from(store.get(&md).unwrap());
    let mut want: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    for t in &want[1..] {
        c.put_manifest(&repo, t, media_types::OCI_MANIFEST, bytes.clone())
            .await
            .unwrap();
    }
    want.sort();
    // docker-registry 2.8.2 ignores `n` and `last` on tag lists (it sends
    // everything, without a Link); whatever the registry does, following
    // Links must yield every tag exactly once.
    let first = c.list_tags(&repo, Some(3), None).await.unwrap();
    let mut pages = vec![first.tags.clone()];
    let mut page = first;
    while let Some(p) = c.next_tags(&repo, &page).await.unwrap() {
        pages.push(p.tags.clone());
        page = p;
    }
    let mut got = pages.concat();
    got.sort();
    assert_eq!(got, want);
    let mut all = c.list_all_tags(&repo).await.unwrap();
    all.sort();
    assert_eq!(all, want);
    let missing = Repository::new(&reg.addr, "no/such").unwrap();
    let err = c.list_all_tags(&missing).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NameUnknown), "{err}");
}

#[tokio::test]
async fn catalog_and_referrers_fallback() {
    let reg = Registry::start();
    let c = client();
    let src = tempfile::tempdir().unwrap();
    let store = DirStore::new(src.path());
    let md = make_image(&store, 3, 1);
    for name in ["cat/a", "cat/b", "cat/c"] {
        let r: Reference = format!("{}/{name}:v", reg.addr).parse().unwrap();
        c.push_image(&r, &md, &store, None, no_progress())
            .await
            .unwrap();
    }
    let page = c.catalog(&reg.addr, Some(2), None).await.unwrap();
    assert_eq!(page.repositories, ["cat/a", "cat/b"]);
    assert!(page.next.is_some());
    let rest = c.catalog(&reg.addr, Some(2), Some("cat/b")).await.unwrap();
    assert_eq!(rest.repositories, ["cat/c"]);
    // Link pagination, one repository per page.
    let mut page = c.catalog(&reg.addr, Some(1), None).await.unwrap();
    let mut seen = page.repositories.clone();
    while let Some(p) = c.next_catalog(&reg.addr, &page).await.unwrap() {
        assert!(p.repositories.len() <= 1);
        seen.extend(p.repositories.clone());
        page = p;
    }
    assert_eq!(seen, ["cat/a", "cat/b", "cat/c"]);
    assert_eq!(c.catalog_all(&reg.addr).await.unwrap(), seen);

    // docker-registry 2.8 predates the referrers API: the client falls
    // back to the `sha256-<hex>` tag the spec defines.
    let repo = Repository::new(&reg.addr, "cat/a").unwrap();
    assert!(c.referrers(&repo, &md, None).await.unwrap().is_empty());
    let sbom = make_image(&store, 4, 1);
    let sbom_size = store.get(&sbom).unwrap().len();
    let fallback = json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": [
        {"mediaType": media_types::OCI_MANIFEST, "digest": sbom.to_string(), "size": sbom_size,
         "artifactType": "application/spdx+json"}]});
    let sbom_ref: Reference = format!("{}/cat/a@{sbom}", reg.addr).parse().unwrap();
    c.push_image(&sbom_ref, &sbom, &store, None, no_progress())
        .await
        .unwrap();
    c.put_manifest(
        &repo,
        &format!("sha256-{}", md.hex()),
        media_types::OCI_INDEX,
        Bytes::from(serde_json::to_vec(&fallback).unwrap()),
    )
    .await
    .unwrap();
    let found = c.referrers(&repo, &md, None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest, sbom);
    assert_eq!(
        c.referrers(&repo, &md, Some("application/spdx+json"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        c.referrers(&repo, &md, Some("other/type"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(Digest, BlobOutcome)>>,
    bytes: Mutex<u64>,
}

impl Progress for Recorder {
    fn advance(&self, _d: &Digest, n: u64) {
        *self.bytes.lock().unwrap() += n;
    }
    fn finish(&self, d: &Digest, outcome: BlobOutcome) {
        self.events.lock().unwrap().push((d.clone(), outcome));
    }
}

#[tokio::test]
async fn push_and_pull_a_multi_platform_image() {
    let reg = Registry::start();
    let c = client();
    let src = tempfile::tempdir().unwrap();
    let store = DirStore::new(src.path());
    let amd = make_image(&store, 5, 3);
    let arm = make_image(&store, 6, 2);
    let index = index_of(&store, &[(amd.clone(), "amd64"), (arm.clone(), "arm64")]);
    let r: Reference = format!("{}/multi/app:1.0", reg.addr).parse().unwrap();
    let rec = std::sync::Arc::new(Recorder::default());
    let pushed = c
        .push_image(&r, &index, &store, None, rec.clone())
        .await
        .unwrap();
    assert_eq!(pushed.digest, index);
    assert_eq!(pushed.media_type, media_types::OCI_INDEX);
    assert_eq!(pushed.blobs.len(), 7);
    assert!(
        pushed
            .blobs
            .iter()
            .all(|(_, o)| *o == BlobOutcome::Transferred)
    );
    assert!(*rec.bytes.lock().unwrap() > 5 * 30_000);

    // Pushing again sends nothing; pushing elsewhere with a mount source
    // links every blob.
    let again = c
        .push_image(&r, &index, &store, None, no_progress())
        .await
        .unwrap();
    assert!(again.blobs.iter().all(|(_, o)| *o == BlobOutcome::Present));
    let other: Reference = format!("{}/multi/copy:1.0", reg.addr).parse().unwrap();
    let copied = c
        .push_image(&other, &index, &store, Some("multi/app"), no_progress())
        .await
        .unwrap();
    assert!(copied.blobs.iter().all(|(_, o)| *o == BlobOutcome::Mounted));

    let dst = tempfile::tempdir().unwrap();
    let sink = DirStore::new(dst.path());
    let pulled = c
        .pull_image(&r, &"linux/arm64".parse().unwrap(), &sink, no_progress())
        .await
        .unwrap();
    assert_eq!(pulled.digest, index);
    assert_eq!(pulled.manifest.digest, arm);
    assert_eq!(pulled.layers.len(), 2);
    // arm config + 2 layers + manifest + index, byte-identical to the source.
    assert_eq!(sink.count(), 5);
    for d in [
        &index,
        &arm,
        &pulled.config.digest,
        &pulled.layers[1].digest,
    ] {
        assert_eq!(sink.get(d), store.get(d), "{d}");
    }
    // Pulling by digest verifies it; a second pull downloads nothing.
    let by_digest: Reference = format!("{}/multi/app@{index}", reg.addr).parse().unwrap();
    let rec = std::sync::Arc::new(Recorder::default());
    c.pull_image(
        &by_digest,
        &Platform::new("linux", "arm64", None),
        &sink,
        rec.clone(),
    )
    .await
    .unwrap();
    assert!(
        rec.events
            .lock()
            .unwrap()
            .iter()
            .all(|(_, o)| *o == BlobOutcome::Present)
    );
    assert_eq!(*rec.bytes.lock().unwrap(), 0);

    let err = c
        .pull_image(&r, &"linux/s390x".parse().unwrap(), &sink, no_progress())
        .await
        .unwrap_err();
    match err {
        ClientError::NoMatchingPlatform { available, .. } => {
            assert_eq!(available, ["linux/amd64", "linux/arm64"]);
        }
        other => panic!("expected NoMatchingPlatform, got {other}"),
    }
}
