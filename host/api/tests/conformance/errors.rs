//! Malformed requests: path tricks, bad digests, unsupported methods. Each
//! gets the spec's 4xx and code, never a 5xx.

use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn path_tricks_never_reach_storage() {
    let s = start().await;
    s.push_image("safe/repo", "v1", "x").await;
    for path in [
        "/v2/../safe/repo/tags/list",
        "/v2/safe/../repo/manifests/v1",
        "/v2/%2e%2e/safe/repo/manifests/v1",
        "/v2/safe/%2e%2e/repo/blobs/uploads/",
        "/v2/safe%2frepo/manifests/v1",
        "/v2/Safe/Repo/manifests/v1",
        "/v2/safe//repo/manifests/v1",
        "/v2/safe/repo./manifests/v1",
        "/v2/-safe/manifests/v1",
        "/v2/safe/repo/manifests/../../../etc/passwd",
        "/v2/safe/repo/blobs/sha256:..%2f..%2fetc",
        "/v2/safe/repo/blobs/uploads/..%2f..%2fcontent",
        "/v2/safe/repo/blobs/uploads/../../x",
        "/v2/safe/repo/unknown-endpoint",
    ] {
        for method in ["GET", "HEAD", "PUT", "DELETE", "PATCH", "POST"] {
            let (status, body) = s.raw(method, path).await;
            assert!(
                (400..500).contains(&status),
                "{method} {path} gave {status}: {body}"
            );
            if method == "GET" && status != 405 {
                let v: serde_json::Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"));
                let code = v["errors"][0]["code"].as_str().unwrap();
                assert!(
                    [
                        "NAME_INVALID",
                        "NAME_UNKNOWN",
                        "MANIFEST_UNKNOWN",
                        "BLOB_UNKNOWN",
                        "BLOB_UPLOAD_UNKNOWN",
                        "DIGEST_INVALID"
                    ]
                    .contains(&code),
                    "{path}: {code}"
                );
            }
        }
    }
    let (status, body) = s.raw("GET", "/v2/Upper/tags/list").await;
    assert_eq!(status, 400);
    assert!(body.contains("NAME_INVALID"), "{body}");
    let (status, body) = s.raw("GET", "/v2/%2e%2e/x/tags/list").await;
    assert_eq!(status, 400);
    assert!(body.contains("NAME_INVALID"), "{body}");
}

#[tokio::test]
async fn malformed_digests_are_digest_invalid() {
    let s = start().await;
    s.push_image("bad/digest", "v1", "x").await;
    for d in [
        "sha256:abc",
        "sha256:ZZZZ",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:",
        ":abc",
    ] {
        for method in [Method::GET, Method::DELETE] {
            let r = s
                .req(method.clone(), &format!("/v2/bad/digest/blobs/{d}"))
                .send()
                .await
                .unwrap();
            expect_error(r, 400, "DIGEST_INVALID").await;
        }
        let r = s
            .req(Method::HEAD, &format!("/v2/bad/digest/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{d}");
        for method in [Method::GET, Method::DELETE] {
            let r = s
                .req(method, &format!("/v2/bad/digest/manifests/{d}"))
                .send()
                .await
                .unwrap();
            expect_error(r, 400, "DIGEST_INVALID").await;
        }
        let r = s
            .req(Method::POST, "/v2/bad/digest/blobs/uploads/")
            .query(&[("digest", d)])
            .body("x")
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "DIGEST_INVALID").await;
    }
}

#[tokio::test]
async fn unsupported_methods_are_405() {
    let s = start().await;
    let (d, _) = s.push_image("m/methods", "v1", "x").await;
    for (method, path) in [
        (Method::POST, "/v2/m/methods/manifests/v1".to_string()),
        (Method::PATCH, "/v2/m/methods/manifests/v1".to_string()),
        (Method::PUT, format!("/v2/m/methods/blobs/{d}")),
        (Method::POST, format!("/v2/m/methods/blobs/{d}")),
        (Method::PATCH, format!("/v2/m/methods/blobs/{d}")),
        (Method::DELETE, "/v2/m/methods/tags/list".to_string()),
        (Method::POST, "/v2/_catalog".to_string()),
        (Method::PUT, "/v2/".to_string()),
        (Method::GET, "/v2/m/methods/blobs/uploads/".to_string()),
        (Method::PUT, format!("/v2/m/methods/referrers/{d}")),
    ] {
        let r = s.req(method.clone(), &path).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(header(&r, "allow").is_some(), "{method} {path} lacks Allow");
        expect_error(r, 405, "UNSUPPORTED").await;
    }
}

#[tokio::test]
async fn listings_answer_head() {
    let s = start().await;
    let (d, _) = s.push_image("m/head", "v1", "x").await;
    for path in [
        "/v2/m/head/tags/list".to_string(),
        "/v2/_catalog".to_string(),
        format!("/v2/m/head/referrers/{d}"),
    ] {
        let r = s.req(Method::HEAD, &path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}
