//! Content management: deleting tags, manifests and blobs.

use reqwest::{Method, StatusCode};

use crate::common::*;

async fn status(s: &Server, method: Method, path: &str) -> StatusCode {
    s.req(method, path).send().await.unwrap().status()
}

#[tokio::test]
async fn delete_tag_keeps_manifest() {
    let s = start().await;
    let (d, _) = s.push_image("mgmt/tag", "tagtest0", "x").await;
    let r = s
        .req(Method::PUT, "/v2/mgmt/tag/manifests/other")
        .header("content-type", OCI_MANIFEST)
        .body(
            s.req(Method::GET, &format!("/v2/mgmt/tag/manifests/{d}"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = s
        .req(Method::DELETE, "/v2/mgmt/tag/manifests/tagtest0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        status(&s, Method::GET, "/v2/mgmt/tag/manifests/tagtest0").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&s, Method::GET, &format!("/v2/mgmt/tag/manifests/{d}")).await,
        StatusCode::OK
    );
    let r = s
        .req(Method::DELETE, "/v2/mgmt/tag/manifests/tagtest0")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn delete_manifest_by_digest_removes_tags_and_referrers() {
    let s = start().await;
    let repo = "mgmt/manifest";
    let (subject, subject_body) = s.push_image(repo, "image", "s").await;
    let (c, l) = s.push_image_blobs(repo, "r").await;
    let subj = Descr::new(OCI_MANIFEST, &subject, subject_body.len());
    let referrer = image_manifest(&c, &[l], &format!(r#", "subject": {}"#, subj.json()));
    let rd = sha256(&referrer);
    for tag in ["ref1", "ref2"] {
        let r = s.put_manifest(repo, tag, OCI_MANIFEST, &referrer).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let before: serde_json::Value = s
        .req(Method::GET, &format!("/v2/{repo}/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["tags"].as_array().unwrap().len(), 3);

    let r = s
        .req(Method::DELETE, &format!("/v2/{repo}/manifests/{rd}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for reference in [rd.as_str(), "ref1", "ref2"] {
        let r = s
            .req(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "MANIFEST_UNKNOWN").await;
    }
    let after: serde_json::Value = s
        .req(Method::GET, &format!("/v2/{repo}/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["tags"], serde_json::json!(["image"]));
    let refs: serde_json::Value = s
        .req(Method::GET, &format!("/v2/{repo}/referrers/{subject}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refs["manifests"], serde_json::json!([]));

    // Deleting it again, or something never pushed: 404.
    let r = s
        .req(Method::DELETE, &format!("/v2/{repo}/manifests/{rd}"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "MANIFEST_UNKNOWN").await;

    // It can be pushed again afterwards.
    let r = s.put_manifest(repo, "ref1", OCI_MANIFEST, &referrer).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        status(&s, Method::GET, &format!("/v2/{repo}/manifests/ref1")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn delete_blob() {
    let s = start().await;
    let d = s.push_blob("mgmt/blob", b"doomed").await;
    let r = s
        .req(Method::DELETE, &format!("/v2/mgmt/blob/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = s
        .req(Method::GET, &format!("/v2/mgmt/blob/blobs/{d}"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "BLOB_UNKNOWN").await;
    assert_eq!(
        status(&s, Method::HEAD, &format!("/v2/mgmt/blob/blobs/{d}")).await,
        StatusCode::NOT_FOUND
    );
    let r = s
        .req(Method::DELETE, &format!("/v2/mgmt/blob/blobs/{d}"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "BLOB_UNKNOWN").await;

    // Uploading it again brings it back.
    s.push_blob("mgmt/blob", b"doomed").await;
    assert_eq!(
        status(&s, Method::GET, &format!("/v2/mgmt/blob/blobs/{d}")).await,
        StatusCode::OK
    );
}
