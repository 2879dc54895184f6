//! Content discovery: tag lists, the catalog and the referrers API.

use reqwest::{Method, StatusCode};

use crate::common::*;

async fn tags(s: &Server, repo: &str, query: &str) -> (Vec<String>, Option<String>) {
    let r = s
        .req(Method::GET, &format!("/v2/{repo}/tags/list{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let link = header(&r, "link");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["name"], repo);
    let list = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    (list, link)
}

#[tokio::test]
async fn tag_list_with_pagination() {
    let s = start().await;
    let (c, l) = s.push_image_blobs("disc/tags", "t").await;
    let body = image_manifest(&c, &[l], "");
    for t in ["test3", "test0", "latest", "test2", "test1"] {
        let r = s.put_manifest("disc/tags", t, OCI_MANIFEST, &body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let (all, link) = tags(&s, "disc/tags", "").await;
    assert_eq!(all, ["latest", "test0", "test1", "test2", "test3"]);
    assert!(link.is_none());

    let (page, link) = tags(&s, "disc/tags", "?n=2").await;
    assert_eq!(page, ["latest", "test0"]);
    let link = link.unwrap();
    assert!(link.contains("rel=\"next\""), "{link}");
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    assert!(next.starts_with("/v2/disc/tags/tags/list?"), "{next}");
    let r = s.client.get(s.resolve(&next)).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["test1", "test2"]));

    let (page, _) = tags(&s, "disc/tags", "?n=2&last=test0").await;
    assert_eq!(page, ["test1", "test2"]);
    let (page, link) = tags(&s, "disc/tags", "?n=10&last=test2").await;
    assert_eq!(page, ["test3"]);
    assert!(link.is_none());
    let (page, link) = tags(&s, "disc/tags", "?last=test3").await;
    assert!(page.is_empty());
    assert!(link.is_none());
    // n=5 exactly: everything, no next page.
    let (page, link) = tags(&s, "disc/tags", "?n=5").await;
    assert_eq!(page.len(), 5);
    assert!(link.is_none());
    // n=0: an empty list.
    let (page, _) = tags(&s, "disc/tags", "?n=0").await;
    assert!(page.is_empty());

    let r = s
        .req(Method::GET, "/v2/disc/tags/tags/list?n=many")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn catalog_with_pagination() {
    let s = start().await;
    for repo in ["cat/b", "cat/a", "cat/c"] {
        s.push_image(repo, "v1", repo).await;
    }
    let r = s.req(Method::GET, "/v2/_catalog").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["repositories"],
        serde_json::json!(["cat/a", "cat/b", "cat/c"])
    );

    let r = s.req(Method::GET, "/v2/_catalog?n=2").send().await.unwrap();
    let link = header(&r, "link").unwrap();
    assert!(link.starts_with("</v2/_catalog?"), "{link}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["cat/a", "cat/b"]));
    let r = s
        .req(Method::GET, "/v2/_catalog?n=2&last=cat%2Fb")
        .send()
        .await
        .unwrap();
    assert!(header(&r, "link").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["cat/c"]));
}

/// An artifact manifest: empty config, `artifactType`, one layer, a subject.
fn artifact(subject: &Descr, artifact_type: &str, layer: &Descr, note: &str) -> Vec<u8> {
    format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "{OCI_MANIFEST}",
  "artifactType": "{artifact_type}",
  "config": {{"mediaType":"{OCI_EMPTY}","digest":"{EMPTY_JSON_DIGEST}","size":2,"data":"e30="}},
  "layers": [{}],
  "subject": {},
  "annotations": {{"org.example.note": "{note}"}}
}}"#,
        layer.json(),
        subject.json()
    )
    .into_bytes()
}

#[tokio::test]
async fn referrers_api() {
    let s = start().await;
    let repo = "disc/refs";
    let (subject, subject_body) = s.push_image(repo, "image", "subject").await;
    let subj = Descr::new(OCI_MANIFEST, &subject, subject_body.len());
    assert_eq!(s.push_blob(repo, b"{}").await, EMPTY_JSON_DIGEST);
    let sig = b"a signature";
    let sig = Descr::new(
        "application/vnd.example.sig",
        &s.push_blob(repo, sig).await,
        sig.len(),
    );
    let sbom = b"an sbom";
    let sbom = Descr::new(
        "application/vnd.example.sbom",
        &s.push_blob(repo, sbom).await,
        sbom.len(),
    );

    let a = artifact(&subj, "application/vnd.example.sig.v1", &sig, "a");
    let b = artifact(&subj, "application/vnd.example.sbom.v1", &sbom, "b");
    for (reference, body) in [(sha256(&a), &a), ("sbom".to_string(), &b)] {
        let r = s.put_manifest(repo, &reference, OCI_MANIFEST, body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "oci-subject"), Some(subject.clone()));
    }
    // An image manifest whose artifact type comes from its config, and an
    // index with a subject.
    let (c, l) = s.push_image_blobs(repo, "referrer-image").await;
    let img = image_manifest(&c, &[l], &format!(r#", "subject": {}"#, subj.json()));
    let r = s.put_manifest(repo, "img-ref", OCI_MANIFEST, &img).await;
    assert_eq!(header(&r, "oci-subject"), Some(subject.clone()));
    let idx = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","artifactType":"application/vnd.example.bundle","manifests":[],"subject":{},"annotations":{{"org.example.note":"i"}}}}"#,
        subj.json()
    );
    let r = s
        .put_manifest(repo, "idx-ref", OCI_INDEX, idx.as_bytes())
        .await;
    assert_eq!(header(&r, "oci-subject"), Some(subject.clone()));
    // A manifest without subject has no OCI-Subject header.
    let r = s
        .put_manifest(repo, "plain", OCI_MANIFEST, &subject_body)
        .await;
    assert!(header(&r, "oci-subject").is_none());

    let r = s
        .req(Method::GET, &format!("/v2/{repo}/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type").as_deref(), Some(OCI_INDEX));
    assert!(header(&r, "oci-filters-applied").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    let find = |d: &str| list.iter().find(|m| m["digest"] == d).unwrap().clone();
    let ma = find(&sha256(&a));
    assert_eq!(ma["artifactType"], "application/vnd.example.sig.v1");
    assert_eq!(ma["mediaType"], OCI_MANIFEST);
    assert_eq!(ma["size"], a.len());
    assert_eq!(ma["annotations"]["org.example.note"], "a");
    assert_eq!(find(&sha256(&img))["artifactType"], OCI_CONFIG);
    let mi = find(&sha256(idx.as_bytes()));
    assert_eq!(mi["mediaType"], OCI_INDEX);
    assert_eq!(mi["artifactType"], "application/vnd.example.bundle");

    let r = s
        .req(Method::GET, &format!("/v2/{repo}/referrers/{subject}"))
        .query(&[("artifactType", "application/vnd.example.sbom.v1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "oci-filters-applied").as_deref(),
        Some("artifactType")
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha256(&b));

    // Unknown subject, unknown repository: an empty index, never 404.
    for path in [
        format!("/v2/{repo}/referrers/{}", sha256(b"hello world")),
        format!("/v2/disc/nowhere/referrers/{subject}"),
    ] {
        let r = s.req(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&r, "content-type").as_deref(), Some(OCI_INDEX));
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["manifests"], serde_json::json!([]));
    }
    // A malformed digest is a bad request.
    let r = s
        .req(Method::GET, &format!("/v2/{repo}/referrers/sha256:nope"))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn referrer_of_a_subject_the_registry_lacks() {
    let s = start().await;
    let repo = "disc/orphan";
    let ghost = Descr::new(OCI_MANIFEST, &sha256(b"missing content"), 123);
    s.push_blob(repo, b"{}").await;
    let layer = b"payload";
    let layer = Descr::new(
        "application/vnd.example.v1",
        &s.push_blob(repo, layer).await,
        layer.len(),
    );
    let m = artifact(&ghost, "application/vnd.example.v1", &layer, "orphan");
    let r = s
        .put_manifest(repo, "tagged-artifact", OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "oci-subject"), Some(ghost.digest.clone()));
    let r = s
        .req(
            Method::GET,
            &format!("/v2/{repo}/referrers/{}", ghost.digest),
        )
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"][0]["digest"], sha256(&m));
    // The artifact itself pulls like any manifest.
    let r = s
        .req(
            Method::GET,
            &format!("/v2/{repo}/manifests/tagged-artifact"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), m);
}
