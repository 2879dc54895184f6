//! Pull: blobs and manifests by tag and digest, HEAD, ranges, 404 codes.

use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn base_endpoint_answers_with_api_version() {
    let s = start().await;
    for path in ["/v2/", "/v2"] {
        let r = s.req(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header(&r, "docker-distribution-api-version").as_deref(),
            Some("registry/2.0")
        );
    }
    let r = s.req(Method::HEAD, "/v2/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn blobs_by_digest_with_get_and_head() {
    let s = start().await;
    let data = b"hello blob".to_vec();
    let d = s.push_blob("pull/blobs", &data).await;

    let r = s
        .req(Method::HEAD, &format!("/v2/pull/blobs/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length").as_deref(), Some("10"));
    assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
    assert!(r.bytes().await.unwrap().is_empty());

    let r = s
        .req(Method::GET, &format!("/v2/pull/blobs/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length").as_deref(), Some("10"));
    assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
    assert_eq!(r.bytes().await.unwrap().to_vec(), data);
}

#[tokio::test]
async fn unknown_blob_and_manifest_are_404_with_codes() {
    let s = start().await;
    s.push_image("pull/unknown", "v1", "a").await;
    let missing = sha256(b"hello world");
    let r = s
        .req(Method::GET, &format!("/v2/pull/unknown/blobs/{missing}"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "BLOB_UNKNOWN").await;
    let r = s
        .req(Method::HEAD, &format!("/v2/pull/unknown/blobs/{missing}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    for reference in ["nope", ".INVALID_MANIFEST_NAME", missing.as_str()] {
        let r = s
            .req(
                Method::GET,
                &format!("/v2/pull/unknown/manifests/{reference}"),
            )
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "MANIFEST_UNKNOWN").await;
        let r = s
            .req(
                Method::HEAD,
                &format!("/v2/pull/unknown/manifests/{reference}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{reference}");
    }

    // A blob of another repository is not visible here.
    let other = s.push_blob("pull/other", b"elsewhere").await;
    let r = s
        .req(Method::GET, &format!("/v2/pull/unknown/blobs/{other}"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "BLOB_UNKNOWN").await;

    let r = s
        .req(Method::GET, "/v2/pull/never/tags/list")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn manifests_by_tag_and_digest_round_trip_byte_for_byte() {
    let s = start().await;
    let (d, body) = s.push_image("pull/manifests", "v1", "rt").await;
    for reference in ["v1", d.as_str()] {
        let r = s
            .req(
                Method::GET,
                &format!("/v2/pull/manifests/manifests/{reference}"),
            )
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type").as_deref(), Some(OCI_MANIFEST));
        assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
        assert_eq!(header(&r, "content-length"), Some(body.len().to_string()));
        assert!(header(&r, "etag").unwrap().contains(&d));
        assert_eq!(r.bytes().await.unwrap().to_vec(), body);

        let r = s
            .req(
                Method::HEAD,
                &format!("/v2/pull/manifests/manifests/{reference}"),
            )
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type").as_deref(), Some(OCI_MANIFEST));
        assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
        assert_eq!(header(&r, "content-length"), Some(body.len().to_string()));
        assert!(r.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn conditional_manifest_get_with_etag() {
    let s = start().await;
    let (d, _) = s.push_image("pull/etag", "v1", "etag").await;
    let r = s
        .req(Method::GET, "/v2/pull/etag/manifests/v1")
        .send()
        .await
        .unwrap();
    let etag = header(&r, "etag").unwrap();
    assert_eq!(etag, format!("\"{d}\""));
    let r = s
        .req(Method::GET, "/v2/pull/etag/manifests/v1")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn range_requests_on_blobs() {
    let s = start().await;
    let data: Vec<u8> = (0..100u8).collect();
    let d = s.push_blob("pull/range", &data).await;
    let path = format!("/v2/pull/range/blobs/{d}");
    let get = |range: &'static str| s.req(Method::GET, &path).header("range", range).send();

    let r = get("bytes=10-19").await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&r, "content-range").as_deref(),
        Some("bytes 10-19/100")
    );
    assert_eq!(header(&r, "content-length").as_deref(), Some("10"));
    assert_eq!(r.bytes().await.unwrap().to_vec(), data[10..20].to_vec());

    let r = get("bytes=90-").await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&r, "content-range").as_deref(),
        Some("bytes 90-99/100")
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), data[90..].to_vec());

    // An end past the blob is clamped, as RFC 9110 says.
    let r = get("bytes=95-1000").await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&r, "content-range").as_deref(),
        Some("bytes 95-99/100")
    );

    // Suffix range: the last 5 bytes.
    let r = get("bytes=-5").await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&r, "content-range").as_deref(),
        Some("bytes 95-99/100")
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), data[95..].to_vec());

    for bad in ["bytes=100-", "bytes=200-300", "bytes=50-10"] {
        let r = get(bad).await.unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(header(&r, "content-range").as_deref(), Some("bytes */100"));
    }

    // A Range the server does not understand is ignored: the whole blob.
    let r = get("items=1-2").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), 100);
}

#[tokio::test]
async fn zero_length_blob() {
    let s = start().await;
    let d = s.push_blob("pull/empty", b"").await;
    let r = s
        .req(Method::GET, &format!("/v2/pull/empty/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length").as_deref(), Some("0"));
    let r = s
        .req(Method::HEAD, &format!("/v2/pull/empty/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length").as_deref(), Some("0"));
}
