//! Habits of real clients (peers.md): several `Accept:` lines, chunked
//! PATCH bodies without `Content-Range`, URL-encoded digests, and both
//! ways of reading a `Location`.

use futures::stream;
use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn several_accept_header_lines() {
    let s = start().await;
    let (d, body) = s.push_image("clients/accept", "v1", "a").await;
    let r = s
        .req(Method::GET, "/v2/clients/accept/manifests/v1")
        .header("accept", DOCKER_MANIFEST)
        .header("accept", DOCKER_LIST)
        .header("accept", OCI_INDEX)
        .header("accept", format!("{OCI_MANIFEST};q=0.9"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type").as_deref(), Some(OCI_MANIFEST));
    assert_eq!(header(&r, "docker-content-digest"), Some(d));
    assert_eq!(r.bytes().await.unwrap().to_vec(), body);
}

#[tokio::test]
async fn chunked_patch_without_content_range() {
    let s = start().await;
    let parts: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 70_000]).collect();
    let whole: Vec<u8> = parts.concat();
    let d = sha256(&whole);
    let r = s
        .req(Method::POST, "/v2/clients/chunked/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = s.resolve(&header(&r, "location").unwrap());

    // Two PATCHes, each a chunked stream with no length and no range.
    let mut loc = loc;
    for half in parts.chunks(4) {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = half.iter().cloned().map(Ok).collect();
        let r = s
            .client
            .patch(&loc)
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        loc = s.resolve(&header(&r, "location").unwrap());
    }
    let r = s.client.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), Some(format!("0-{}", whole.len() - 1)));

    // Go clients encode the colon: ?digest=sha256%3A...
    let encoded = d.replace(':', "%3A");
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = s
        .client
        .put(format!("{loc}{sep}digest={encoded}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
    let r = s
        .req(Method::HEAD, &format!("/v2/clients/chunked/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-length"), Some(whole.len().to_string()));
}

#[tokio::test]
async fn monolithic_post_with_encoded_digest_and_chunked_body() {
    let s = start().await;
    let data = b"streamed in one POST".to_vec();
    let d = sha256(&data);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(5).map(|c| Ok(c.to_vec())).collect();
    let r = s
        .client
        .post(s.url(&format!(
            "/v2/clients/mono/blobs/uploads/?digest={}",
            d.replace(':', "%3A")
        )))
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .client
        .get(s.resolve(&header(&r, "location").unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), data);
}

#[tokio::test]
async fn locations_work_relative_and_absolute() {
    let s = start().await;
    let r = s
        .req(Method::POST, "/v2/clients/loc/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap();
    // Berth sends an absolute path: right behind any proxy that keeps the
    // path, and usable both as a relative reference and joined to the base.
    assert!(loc.starts_with("/v2/clients/loc/blobs/uploads/"), "{loc}");
    let joined = reqwest::Url::parse(&format!("{}/v2/clients/loc/blobs/uploads/", s.base))
        .unwrap()
        .join(&loc)
        .unwrap();
    let r = s.client.get(joined.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.client.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}
