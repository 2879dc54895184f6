//! Wasm components as OCI artifacts, against a real docker-registry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use berth_client::{ClientError, Repository};
use berth_oci::media_types;
use bytes::Bytes;
use common::{Registry, client, data};

#[tokio::test]
async fn a_component_pushed_as_an_artifact_comes_back_by_digest() {
    let reg = Registry::start();
    let c = client();
    let repo = Repository::new(&reg.addr, "plugins/deny-root").unwrap();
    let component = Bytes::from(data(200_000, 7));
    let digest = c
        .push_wasm_artifact(&repo, "v1", component.clone())
        .await
        .unwrap();

    let got = c
        .pull_wasm_artifact(&repo, &digest.to_string(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(got.manifest, digest);
    assert_eq!(got.bytes, component);
    assert_eq!(
        got.artifact_type.as_deref(),
        Some(media_types::BERTH_PLUGIN)
    );
    let by_tag = c.pull_wasm_artifact(&repo, "v1", 1 << 20).await.unwrap();
    assert_eq!(by_tag.manifest, digest);

    let err = c.pull_wasm_artifact(&repo, "v1", 1000).await.unwrap_err();
    assert!(err.to_string().contains("more than the limit"), "{err}");
}

#[tokio::test]
async fn an_image_is_not_taken_for_a_plugin() {
    let reg = Registry::start();
    let c = client();
    let repo = Repository::new(&reg.addr, "plugins/not-wasm").unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {"mediaType": media_types::OCI_EMPTY,
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
        "layers": [],
    });
    let empty = Bytes::from_static(b"{}");
    let session = c.start_upload(&repo).await.unwrap();
    let d = berth_oci::Digest::sha256_of(&empty);
    let mut session = session;
    c.upload_chunk(&mut session, empty).await.unwrap();
    c.finish_upload(session, &d).await.unwrap();
    c.put_manifest(
        &repo,
        "img",
        media_types::OCI_MANIFEST,
        Bytes::from(manifest.to_string()),
    )
    .await
    .unwrap();
    let err = c
        .pull_wasm_artifact(&repo, "img", 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::BadResponse { .. }), "{err}");
    assert!(err.to_string().contains("not a Wasm artifact"), "{err}");
}
