//! Push: blob uploads (monolithic, POST+PUT, chunked, streamed), mounts,
//! and manifests of every type berth serves.

use reqwest::{Method, StatusCode};

use crate::common::*;

async fn open_session(s: &Server, repo: &str) -> String {
    let r = s
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "content-length").as_deref(), Some("0"));
    assert!(header(&r, "docker-upload-uuid").is_some());
    let loc = header(&r, "location").unwrap();
    assert!(
        loc.starts_with(&format!("/v2/{repo}/blobs/uploads/")),
        "{loc}"
    );
    s.resolve(&loc)
}

#[tokio::test]
async fn post_then_put() {
    let s = start().await;
    let data = b"NBA Jam on my NBA toast";
    let d = sha256(data);
    let loc = open_session(&s, "push/postput").await;
    let r = s
        .client
        .put(&loc)
        .query(&[("digest", &d)])
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "content-length").as_deref(), Some("0"));
    assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
    let blob = s.resolve(&header(&r, "location").unwrap());
    assert_eq!(blob, s.url(&format!("/v2/push/postput/blobs/{d}")));
    let got = s.client.get(&blob).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), data);

    // The finished session is gone.
    let r = s.client.get(&loc).send().await.unwrap();
    expect_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn monolithic_post_with_digest() {
    let s = start().await;
    let data = br#"{"architecture":"amd64"}"#;
    let d = sha256(data);
    let r = s
        .req(Method::POST, "/v2/push/mono/blobs/uploads/")
        .query(&[("digest", &d)])
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
    let loc = s.resolve(&header(&r, "location").unwrap());
    let got = s.client.get(loc).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().as_ref(), data);

    // Wrong digest: 400 and nothing stored.
    let wrong = sha256(b"something else");
    let r = s
        .req(Method::POST, "/v2/push/mono/blobs/uploads/")
        .query(&[("digest", &wrong)])
        .body(b"not that".to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID").await;
    for d in [wrong, sha256(b"not that")] {
        let r = s
            .req(Method::HEAD, &format!("/v2/push/mono/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn chunked_upload_in_order_and_out_of_order() {
    let s = start().await;
    let blob = b"Hello, how are you today?";
    let d = sha256(blob);
    let (c1, c2) = blob.split_at(3);

    // Out of order first: 416.
    let loc = open_session(&s, "push/chunked").await;
    let r = s
        .client
        .patch(&loc)
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("3-{}", blob.len() - 1))
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 416, "BLOB_UPLOAD_INVALID").await;

    let loc = open_session(&s, "push/chunked").await;
    let r = s
        .client
        .patch(&loc)
        .header("content-type", "application/octet-stream")
        .header("content-range", "0-2")
        .body(c1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range").as_deref(), Some("0-2"));
    assert_eq!(header(&r, "content-length").as_deref(), Some("0"));
    let next = s.resolve(&header(&r, "location").unwrap());

    // Retrying the previous chunk is out of order now.
    let r = s
        .client
        .patch(&loc)
        .header("content-range", "0-2")
        .body(c1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // The stale location still reports progress.
    let r = s.client.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range").as_deref(), Some("0-2"));
    assert!(header(&r, "location").is_some());
    // HEAD is GET without a body.
    let r = s.client.head(&loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range").as_deref(), Some("0-2"));

    // A final PUT whose Content-Range skips ahead is refused and the
    // session survives it.
    let r = s
        .client
        .put(&next)
        .query(&[("digest", &d)])
        .header("content-range", format!("5-{}", blob.len() + 1))
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = s.client.get(&next).send().await.unwrap();
    assert_eq!(header(&r, "range").as_deref(), Some("0-2"));

    // Final chunk with the PUT.
    let r = s
        .client
        .put(&next)
        .query(&[("digest", &d)])
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("3-{}", blob.len() - 1))
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s
        .client
        .get(s.resolve(&header(&r, "location").unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), blob);
}

#[tokio::test]
async fn chunks_then_empty_put() {
    let s = start().await;
    let blob: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let d = sha256(&blob);
    let mut loc = open_session(&s, "push/chunks").await;
    for (i, chunk) in blob.chunks(1001).enumerate() {
        let start = i * 1001;
        let r = s
            .client
            .patch(&loc)
            .header(
                "content-range",
                format!("{start}-{}", start + chunk.len() - 1),
            )
            .header("content-length", chunk.len().to_string())
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(
            header(&r, "range"),
            Some(format!("0-{}", start + chunk.len() - 1))
        );
        loc = s.resolve(&header(&r, "location").unwrap());
    }
    let r = s
        .client
        .put(&loc)
        .query(&[("digest", &d)])
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_digest_on_put_stores_nothing() {
    let s = start().await;
    let loc = open_session(&s, "push/wrong").await;
    let r = s
        .client
        .patch(&loc)
        .body(b"actual bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let claimed = sha256(b"claimed bytes");
    let r = s
        .client
        .put(&loc)
        .query(&[("digest", &claimed)])
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID").await;
    for d in [claimed, sha256(b"actual bytes")] {
        let r = s
            .req(Method::HEAD, &format!("/v2/push/wrong/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    // No digest at all, or a malformed one.
    let loc = open_session(&s, "push/wrong").await;
    let r = s.client.put(&loc).send().await.unwrap();
    expect_error(r, 400, "DIGEST_INVALID").await;
    let r = s
        .client
        .put(&loc)
        .query(&[("digest", "sha256:abc")])
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn cancel_upload() {
    let s = start().await;
    let loc = open_session(&s, "push/cancel").await;
    let r = s.client.delete(&loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.client.get(&loc).send().await.unwrap();
    expect_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
    let r = s.client.delete(&loc).send().await.unwrap();
    expect_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
    let r = s
        .client
        .patch(&loc)
        .body(b"late".to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
    // A session is bound to its repository.
    let loc = open_session(&s, "push/cancel").await;
    let id = loc.rsplit('/').next().unwrap();
    let r = s
        .req(
            Method::GET,
            &format!("/v2/push/elsewhere/blobs/uploads/{id}"),
        )
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = start().await;
    let d = s.push_blob("push/source", b"shared layer").await;

    let r = s
        .req(Method::POST, "/v2/push/target/blobs/uploads/")
        .query(&[("mount", d.as_str()), ("from", "push/source")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
    assert_eq!(
        header(&r, "location"),
        Some(format!("/v2/push/target/blobs/{d}"))
    );
    let r = s
        .req(Method::GET, &format!("/v2/push/target/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"shared layer");

    // From an unknown repository, or of an unknown blob: a plain session
    // (202) the client can upload into. (Without `from`, the blob is found
    // where the caller may pull it: see conformance_suite2.rs.)
    let unknown = sha256(b"hello world");
    for q in [
        vec![("mount", d.as_str()), ("from", "push/nowhere")],
        vec![("mount", unknown.as_str()), ("from", "push/source")],
        vec![("mount", d.as_str()), ("from", "../Bad")],
    ] {
        let r = s
            .req(Method::POST, "/v2/push/third/blobs/uploads/")
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{q:?}");
        assert!(
            header(&r, "location")
                .unwrap()
                .starts_with("/v2/push/third/blobs/uploads/")
        );
    }
    let r = s
        .req(Method::HEAD, &format!("/v2/push/third/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn second_identical_upload_and_sha512() {
    let s = start().await;
    let data = b"twice";
    let d1 = s.push_blob("push/twice", data).await;
    let d2 = s.push_blob("push/twice", data).await;
    assert_eq!(d1, d2);
    s.push_blob("push/twice-b", data).await;

    let d512 = sha512(b"a sha512 blob");
    s.push_blob_as("push/sha512", b"a sha512 blob", &d512).await;
    let r = s
        .req(Method::GET, &format!("/v2/push/sha512/blobs/{d512}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), Some(d512.clone()));

    // A manifest addressed by its sha512 digest.
    let (c, l) = s.push_image_blobs("push/sha512", "x").await;
    let body = image_manifest(&c, &[l], "");
    let md = sha512(&body);
    let r = s
        .put_manifest("push/sha512", &md, OCI_MANIFEST, &body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), Some(md.clone()));
    let r = s
        .req(Method::GET, &format!("/v2/push/sha512/manifests/{md}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), body);
}

#[tokio::test]
async fn manifest_put_by_tag_and_digest() {
    let s = start().await;
    let (c, l) = s.push_image_blobs("push/m", "m").await;
    let body = image_manifest(&c, std::slice::from_ref(&l), "");
    let d = sha256(&body);
    for tag in ["test0", "test1", "test0"] {
        let r = s.put_manifest("push/m", tag, OCI_MANIFEST, &body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "content-length").as_deref(), Some("0"));
        assert_eq!(header(&r, "docker-content-digest"), Some(d.clone()));
        assert_eq!(
            header(&r, "location"),
            Some(format!("/v2/push/m/manifests/{d}"))
        );
    }
    let r = s.put_manifest("push/m", &d, OCI_MANIFEST, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // By a digest that is not the body's.
    let other = sha256(b"other");
    let r = s.put_manifest("push/m", &other, OCI_MANIFEST, &body).await;
    expect_error(r, 400, "DIGEST_INVALID").await;
    let r = s
        .req(Method::GET, &format!("/v2/push/m/manifests/{other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A tag moves when re-pushed with another manifest.
    let body2 = image_manifest(&c, &[l], r#", "annotations": {"v": "2"}"#);
    let r = s
        .put_manifest("push/m", "test0", OCI_MANIFEST, &body2)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .req(Method::GET, "/v2/push/m/manifests/test0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), body2);
}

#[tokio::test]
async fn manifest_media_type_from_header_when_body_has_none() {
    let s = start().await;
    let (c, l) = s.push_image_blobs("push/nomt", "n").await;
    let body = format!(
        r#"{{"schemaVersion":2,"config":{},"layers":[{}]}}"#,
        c.json(),
        l.json()
    );
    let r = s
        .put_manifest("push/nomt", "v1", OCI_MANIFEST, body.as_bytes())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .req(Method::GET, "/v2/push/nomt/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-type").as_deref(), Some(OCI_MANIFEST));

    // A body that says one type while the header says another is refused.
    let r = s
        .put_manifest("push/nomt", "v2", OCI_INDEX, &image_manifest(&c, &[], ""))
        .await;
    expect_error(r, 400, "MANIFEST_INVALID").await;
}

#[tokio::test]
async fn docker_schema2_and_manifest_list_beside_oci() {
    let s = start().await;
    let cfg = br#"{"architecture":"arm64","os":"linux"}"#;
    let layer = b"docker layer";
    let c = Descr::new(
        DOCKER_CONFIG,
        &s.push_blob("push/docker", cfg).await,
        cfg.len(),
    );
    let l = Descr::new(
        DOCKER_LAYER,
        &s.push_blob("push/docker", layer).await,
        layer.len(),
    );
    let m = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{DOCKER_MANIFEST}\",\n   \"config\": {},\n   \"layers\": [\n      {}\n   ]\n}}",
        c.json(),
        l.json()
    );
    let r = s
        .put_manifest("push/docker", "arm64", DOCKER_MANIFEST, m.as_bytes())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let md = sha256(m.as_bytes());

    let (oci, oci_body) = s.push_image("push/docker", "amd64", "oci").await;
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{md}","size":{},"platform":{{"architecture":"arm64","os":"linux"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{oci}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        m.len(),
        oci_body.len()
    );
    let r = s
        .put_manifest("push/docker", "multi", DOCKER_LIST, list.as_bytes())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    for (tag, mt, body) in [
        ("arm64", DOCKER_MANIFEST, m.as_bytes()),
        ("multi", DOCKER_LIST, list.as_bytes()),
    ] {
        let r = s
            .req(Method::GET, &format!("/v2/push/docker/manifests/{tag}"))
            .header("accept", DOCKER_MANIFEST)
            .header("accept", DOCKER_LIST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type").as_deref(), Some(mt));
        assert_eq!(r.bytes().await.unwrap().as_ref(), body);
    }

    // An OCI index of the same children.
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{oci}","size":{}}}]}}"#,
        oci_body.len()
    );
    let r = s
        .put_manifest("push/docker", "index", OCI_INDEX, index.as_bytes())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // And an empty one.
    let empty = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
    let r = s
        .put_manifest("push/docker", "empty", OCI_INDEX, empty.as_bytes())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn manifests_with_missing_references_are_refused() {
    let s = start().await;
    let (c, _) = s.push_image_blobs("push/missing", "x").await;
    let ghost = Descr::new(OCI_LAYER, &sha256(b"never pushed"), 12);
    let body = image_manifest(&c, std::slice::from_ref(&ghost), "");
    let r = s
        .put_manifest("push/missing", "v1", OCI_MANIFEST, &body)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(v["errors"][0]["detail"]["digest"], ghost.digest.as_str());
    let r = s
        .req(Method::GET, "/v2/push/missing/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A missing config, too.
    let ghost_cfg = Descr::new(OCI_CONFIG, &sha256(b"no config"), 9);
    let body = image_manifest(&ghost_cfg, &[], "");
    let r = s
        .put_manifest("push/missing", "v1", OCI_MANIFEST, &body)
        .await;
    expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;

    // An index whose child manifests are not in the repository.
    let child = Descr::new(OCI_MANIFEST, &sha256(b"no such manifest"), 16);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        child.json()
    );
    let r = s
        .put_manifest("push/missing", "idx", OCI_INDEX, index.as_bytes())
        .await;
    expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;

    // Foreign layers with `urls` live elsewhere and need not be pushed.
    let foreign = format!(
        r#", "layers": [{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{}","size":123456,"urls":["https://store.example.com/blob"]}}]"#,
        sha256(b"foreign")
    );
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{}{foreign}}}"#,
        c.json()
    );
    let r = s
        .put_manifest("push/missing", "foreign", OCI_MANIFEST, body.as_bytes())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_manifests() {
    let s = start().await;
    let (c, _) = s.push_image_blobs("push/invalid", "x").await;
    for (ct, body) in [
        (OCI_MANIFEST, b"blablabla".to_vec()),
        (OCI_MANIFEST, b"".to_vec()),
        (OCI_MANIFEST, br#"{"schemaVersion":1}"#.to_vec()),
        (OCI_MANIFEST, br#"[1,2,3]"#.to_vec()),
        (
            OCI_INDEX,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#
                .to_vec(),
        ),
        (
            OCI_MANIFEST,
            format!(
                r#"{{"schemaVersion":2,"config":{},"layers":[{{"digest":"sha256:zz"}}]}}"#,
                c.json()
            )
            .into_bytes(),
        ),
    ] {
        let r = s.put_manifest("push/invalid", "v1", ct, &body).await;
        expect_error(r, 400, "MANIFEST_INVALID").await;
    }
    // The conformance suite's "400 with OCI JSON": a bad digest reference.
    let r = s
        .put_manifest(
            "push/invalid",
            "sha256:totallywrong",
            OCI_MANIFEST,
            b"blablabla",
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let code = error_code(r).await;
    assert!(
        code == "DIGEST_INVALID" || code == "MANIFEST_INVALID",
        "{code}"
    );
    // An invalid tag.
    let body = image_manifest(&c, &[], "");
    let r = s
        .put_manifest("push/invalid", "-bad-tag", OCI_MANIFEST, &body)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oversized_manifest_is_413() {
    let s = start().await;
    let body = vec![b' '; 5 * 1024 * 1024];
    let r = s.put_manifest("push/big", "v1", OCI_MANIFEST, &body).await;
    expect_error(r, 413, "SIZE_INVALID").await;
}
