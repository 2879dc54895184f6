//! Bad input over raw HTTP: each must get a 4xx with a spec error code, store nothing, and
//! leave the daemon serving.

use berth_e2e::http::{Request, with_query};
use berth_e2e::suites::{self, OCI_MANIFEST, expect_error, expect_no_blob, expect_no_tags};
use berth_e2e::{Berthd, layout, sha256_digest};
use std::net::SocketAddr;

const REPO: &str = "e2e/bad";

fn start() -> anyhow::Result<Berthd> {
    Berthd::start(Berthd::CONFIG_AUTH_NONE)
}

/// A POST carrying `?digest=` and a body is a single-request upload, which the spec lets a
/// registry decline by opening a session (202) instead; if it does take the body, a bad
/// digest must be refused.
fn expect_refused_or_session(what: &str, resp: &berth_e2e::http::Response) -> anyhow::Result<()> {
    if resp.status == 202 {
        return Ok(());
    }
    expect_error(what, resp, &[400], &["DIGEST_INVALID"])
}

fn malformed_digests() -> Vec<String> {
    vec![
        "sha256:xyz".into(),
        "sha256:".into(),
        "sha256".into(),
        "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{}", "g".repeat(64)),
        format!("sha256:{}/../x", "a".repeat(64)),
    ]
}

/// Finishes the test: the daemon still answers and accepts a good push; the root's blobs are
/// all content-addressed.
fn still_serving(daemon: &mut Berthd) -> anyhow::Result<()> {
    daemon.check_alive()?;
    let r = Request::get("/v2/").send(daemon.addr)?;
    assert_eq!(r.status, 200, "GET /v2/ after bad input: {}", r.text());
    let manifest = suites::push_tiny_image(daemon.addr, "e2e/good", "ok", "after-bad-input")?;
    let r = Request::get("/v2/e2e/good/manifests/ok")
        .header("Accept", OCI_MANIFEST)
        .send(daemon.addr)?;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, manifest);
    layout::verify_content_addressed(&daemon.root)?;
    Ok(())
}

#[test]
fn malformed_digests_are_digest_invalid() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let addr = daemon.addr;
    for digest in malformed_digests() {
        // Monolithic upload in the POST.
        let r = Request::post(&format!("/v2/{REPO}/blobs/uploads/?digest={digest}"))
            .body(b"hello".to_vec())
            .send(addr)?;
        expect_refused_or_session(&format!("POST ?digest={digest}"), &r)?;
        // Closing an upload session.
        let start = Request::post(&format!("/v2/{REPO}/blobs/uploads/")).send(addr)?;
        assert_eq!(start.status, 202, "{}", start.text());
        let r = Request::put(&with_query(&start.location()?, "digest", &digest))
            .body(b"hello".to_vec())
            .send(addr)?;
        expect_error(
            &format!("PUT ?digest={digest}"),
            &r,
            &[400],
            &["DIGEST_INVALID"],
        )?;
        // Reading a blob by a malformed digest.
        let r = Request::get(&format!("/v2/{REPO}/blobs/{digest}")).send(addr)?;
        expect_error(
            &format!("GET blob {digest}"),
            &r,
            &[400, 404],
            &[
                "DIGEST_INVALID",
                "BLOB_UNKNOWN",
                "NAME_UNKNOWN",
                "NAME_INVALID",
            ],
        )?;
    }
    expect_no_blob(addr, REPO, &sha256_digest(b"hello"))?;
    still_serving(&mut daemon)
}

#[test]
fn wrong_digest_stores_nothing() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let addr = daemon.addr;
    let body = b"the real content".to_vec();
    let real = sha256_digest(&body);
    let wrong = sha256_digest(b"claimed content");

    // Monolithic POST.
    let r = Request::post(&format!("/v2/{REPO}/blobs/uploads/?digest={wrong}"))
        .body(body.clone())
        .send(addr)?;
    expect_refused_or_session("POST with wrong digest", &r)?;
    // POST + PUT.
    let r = suites::push_blob(addr, REPO, &body, &wrong)?;
    expect_error("PUT with wrong digest", &r, &[400], &["DIGEST_INVALID"])?;
    // POST + PATCH + PUT.
    let start = Request::post(&format!("/v2/{REPO}/blobs/uploads/")).send(addr)?;
    assert_eq!(start.status, 202);
    let patched = Request::patch(&start.location()?)
        .header("Content-Type", "application/octet-stream")
        .body(body.clone())
        .send(addr)?;
    assert_eq!(patched.status, 202, "PATCH: {}", patched.text());
    let r = Request::put(&with_query(&patched.location()?, "digest", &wrong)).send(addr)?;
    expect_error(
        "PATCH then PUT with wrong digest",
        &r,
        &[400],
        &["DIGEST_INVALID"],
    )?;

    for digest in [&real, &wrong] {
        expect_no_blob(addr, REPO, digest)?;
    }
    still_serving(&mut daemon)
}

#[test]
fn lying_content_length_stores_nothing() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let addr = daemon.addr;
    // The blob the client means to send, and the first ten bytes it actually sends.
    let whole: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let short = whole[..10].to_vec();
    let (whole_digest, short_digest) = (sha256_digest(&whole), sha256_digest(&short));

    // PUT closing a session: says 1000 bytes, sends 10, then closes its write side.
    let start = Request::post(&format!("/v2/{REPO}/blobs/uploads/")).send(addr)?;
    assert_eq!(start.status, 202);
    for digest in [&short_digest, &whole_digest] {
        let r = Request::put(&with_query(&start.location()?, "digest", digest))
            .body(short.clone())
            .content_length(1000)
            .timeout(std::time::Duration::from_secs(30))
            .send(addr);
        if let Ok(r) = &r {
            assert!(
                r.status >= 400,
                "short PUT body accepted: {} {}",
                r.status,
                r.text()
            );
        }
    }
    expect_no_blob(addr, REPO, &short_digest)?;
    expect_no_blob(addr, REPO, &whole_digest)?;

    // Single POST with ?digest=.
    for digest in [&short_digest, &whole_digest] {
        let r = Request::post(&format!("/v2/{REPO}/blobs/uploads/?digest={digest}"))
            .body(short.clone())
            .content_length(1000)
            .send(addr);
        if let Ok(r) = &r {
            assert!(
                r.status >= 400 || r.status == 202,
                "short single-POST body accepted: {} {}",
                r.status,
                r.text()
            );
        }
    }
    expect_no_blob(addr, REPO, &short_digest)?;
    expect_no_blob(addr, REPO, &whole_digest)?;

    // A PATCH cut short. A registry may keep the bytes it did receive (resumable uploads);
    // the upload's status must then say so, and finishing it must yield exactly `whole`.
    let start = Request::post(&format!("/v2/{REPO}/blobs/uploads/")).send(addr)?;
    let loc = start.location()?;
    let _ = Request::patch(&loc)
        .header("Content-Type", "application/octet-stream")
        .body(short.clone())
        .content_length(1000)
        .send(addr);
    expect_no_blob(addr, REPO, &short_digest)?;
    expect_no_blob(addr, REPO, &whole_digest)?;
    let status = Request::get(&loc).send(addr)?;
    if status.status == 204 {
        let kept: usize = match status.header("range") {
            Some(range) => {
                let end = range.rsplit('-').next().unwrap_or_default();
                let end: usize = end
                    .parse()
                    .map_err(|_| anyhow::anyhow!("bad Range {range:?}"))?;
                if range == "0-0" { 0 } else { end + 1 }
            }
            None => 0,
        };
        assert!(
            kept <= short.len(),
            "upload claims {kept} bytes after a 10-byte PATCH"
        );
        let r = Request::put(&with_query(
            &status.location().unwrap_or(loc.clone()),
            "digest",
            &whole_digest,
        ))
        .header("Content-Type", "application/octet-stream")
        .body(whole[kept..].to_vec())
        .send(addr)?;
        assert_eq!(r.status, 201, "finishing the resumed upload: {}", r.text());
        let got = Request::get(&format!("/v2/{REPO}/blobs/{whole_digest}")).send(addr)?;
        assert_eq!(sha256_digest(&got.body), whole_digest);
    } else {
        assert!(
            (400..500).contains(&status.status),
            "upload status after a cut PATCH: {}",
            status.status
        );
    }
    expect_no_blob(addr, REPO, &short_digest)?;
    still_serving(&mut daemon)
}

#[test]
fn path_tricks_in_repository_names() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let addr = daemon.addr;
    let marker = format!("escape{}", std::process::id());
    let names = [
        format!("../{marker}"),
        format!("../../{marker}"),
        format!("e2e/../../{marker}"),
        format!("%2e%2e/{marker}"),
        format!("%2E%2E/%2e%2e/{marker}"),
        format!("e2e/%2e%2e/%2e%2e/{marker}"),
        format!("..%2f..%2f{marker}"),
        format!("e2e/./{marker}"),
        format!("e2e//{marker}"),
        format!("/{marker}"),
        format!("E2E/{marker}"),
        format!("-{marker}"),
        format!("e2e/{marker}%00"),
        format!("e2e/{marker}%2f..%2f..%2f"),
    ];
    let body = b"escape attempt".to_vec();
    let digest = sha256_digest(&body);
    let manifest = suites::tiny_manifest(b"{}", &body);
    for name in &names {
        let r = Request::post(&format!("/v2/{name}/blobs/uploads/?digest={digest}"))
            .body(body.clone())
            .send(addr)?;
        expect_error(
            &format!("blob upload to {name:?}"),
            &r,
            &[400, 404],
            &["NAME_INVALID", "NAME_UNKNOWN"],
        )?;
        let r = Request::put(&format!("/v2/{name}/manifests/latest"))
            .header("Content-Type", OCI_MANIFEST)
            .body(manifest.clone())
            .send(addr)?;
        expect_error(
            &format!("manifest put to {name:?}"),
            &r,
            &[400, 404],
            &["NAME_INVALID", "NAME_UNKNOWN"],
        )?;
        let r = Request::get(&format!("/v2/{name}/tags/list")).send(addr)?;
        expect_error(
            &format!("tags/list of {name:?}"),
            &r,
            &[400, 404],
            &["NAME_INVALID", "NAME_UNKNOWN"],
        )?;
    }
    // Nothing named after the marker anywhere the tricks could reach.
    let mut places = vec![
        daemon.dir().to_path_buf(),
        daemon.root.clone(),
        std::env::temp_dir(),
        "/".into(),
    ];
    let mut p = daemon.root.clone();
    while p.pop() {
        places.push(p.clone());
    }
    for place in places {
        for entry in std::fs::read_dir(&place)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(&marker),
                "{} appeared in {}",
                name,
                place.display()
            );
        }
    }
    let found = berth_e2e::run_ok(
        std::process::Command::new("find")
            .arg(&daemon.root)
            .arg("-name")
            .arg(format!("*{marker}*")),
    )?;
    assert!(
        found.trim().is_empty(),
        "names from path tricks stored under the root:\n{found}"
    );
    let r = Request::get("/v2/_catalog").send(addr)?;
    if r.status == 200 {
        assert!(
            !r.text().contains(&marker),
            "catalog lists a trick name: {}",
            r.text()
        );
    }
    still_serving(&mut daemon)
}

fn push_valid_blobs(addr: SocketAddr, config: &[u8], layer: &[u8]) -> anyhow::Result<()> {
    for blob in [config, layer] {
        let r = suites::push_blob(addr, REPO, blob, &sha256_digest(blob))?;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    Ok(())
}

#[test]
fn invalid_manifests_are_rejected() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let addr = daemon.addr;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"layer bytes".to_vec();
    push_valid_blobs(addr, config, &layer)?;
    let good = suites::tiny_manifest(config, &layer);

    let mut no_config: serde_json::Value = serde_json::from_slice(&good)?;
    if let Some(obj) = no_config.as_object_mut() {
        obj.remove("config");
    }
    let mut bad_version: serde_json::Value = serde_json::from_slice(&good)?;
    bad_version["schemaVersion"] = serde_json::json!(1);
    let mut bad_digest: serde_json::Value = serde_json::from_slice(&good)?;
    bad_digest["layers"][0]["digest"] = serde_json::json!("sha256:nothex");
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JSON", good[..good.len() / 2].to_vec()),
        ("not JSON", b"{not json".to_vec()),
        ("empty body", Vec::new()),
        ("a JSON array", b"[]".to_vec()),
        ("no config", no_config.to_string().into_bytes()),
        ("schemaVersion 1", bad_version.to_string().into_bytes()),
        (
            "malformed layer digest",
            bad_digest.to_string().into_bytes(),
        ),
    ];
    for (what, body) in invalid {
        let r = Request::put(&format!("/v2/{REPO}/manifests/v1"))
            .header("Content-Type", OCI_MANIFEST)
            .body(body)
            .send(addr)?;
        expect_error(what, &r, &[400], &["MANIFEST_INVALID", "DIGEST_INVALID"])?;
    }

    // Naming blobs that were never pushed.
    let missing_layer = suites::tiny_manifest(config, b"never pushed");
    let r = Request::put(&format!("/v2/{REPO}/manifests/v1"))
        .header("Content-Type", OCI_MANIFEST)
        .body(missing_layer)
        .send(addr)?;
    expect_error(
        "manifest naming a missing layer",
        &r,
        &[400],
        &["MANIFEST_BLOB_UNKNOWN"],
    )?;
    let missing_config = suites::tiny_manifest(b"{\"never\":\"pushed\"}", &layer);
    let r = Request::put(&format!("/v2/{REPO}/manifests/v1"))
        .header("Content-Type", OCI_MANIFEST)
        .body(missing_config)
        .send(addr)?;
    expect_error(
        "manifest naming a missing config",
        &r,
        &[400],
        &["MANIFEST_BLOB_UNKNOWN"],
    )?;

    // A good manifest PUT by a digest that is not its own.
    let wrong = sha256_digest(b"not the manifest");
    let r = Request::put(&format!("/v2/{REPO}/manifests/{wrong}"))
        .header("Content-Type", OCI_MANIFEST)
        .body(good.clone())
        .send(addr)?;
    expect_error(
        "manifest by the wrong digest",
        &r,
        &[400],
        &["DIGEST_INVALID"],
    )?;

    expect_no_tags(addr, REPO)?;
    for reference in ["v1".to_string(), wrong, sha256_digest(&good)] {
        let r = Request::head(&format!("/v2/{REPO}/manifests/{reference}"))
            .header("Accept", OCI_MANIFEST)
            .send(addr)?;
        assert_eq!(
            r.status, 404,
            "HEAD manifest {reference} after rejected pushes"
        );
    }
    still_serving(&mut daemon)
}

#[test]
fn out_of_order_chunks_are_refused() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let addr = daemon.addr;
    let data: Vec<u8> = (0u8..30).collect();
    let start = Request::post(&format!("/v2/{REPO}/blobs/uploads/")).send(addr)?;
    assert_eq!(start.status, 202);
    let first = Request::patch(&start.location()?)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "0-9")
        .body(data[..10].to_vec())
        .send(addr)?;
    assert_eq!(first.status, 202, "first chunk: {}", first.text());
    assert_eq!(
        first.header("range"),
        Some("0-9"),
        "Range after the first chunk"
    );
    let loc = first.location()?;

    // A gap: bytes 20-29 before 10-19.
    let gap = Request::patch(&loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "20-29")
        .body(data[20..].to_vec())
        .send(addr)?;
    assert_eq!(
        gap.status,
        416,
        "chunk after a gap: {} {}",
        gap.status,
        gap.text()
    );
    // An overlap: 0-9 again.
    let overlap = Request::patch(&loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "0-9")
        .body(data[..10].to_vec())
        .send(addr)?;
    assert_eq!(
        overlap.status,
        416,
        "overlapping chunk: {} {}",
        overlap.status,
        overlap.text()
    );
    // A Content-Range that does not match the body length.
    let mismatch = Request::patch(&loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "10-29")
        .body(data[10..20].to_vec())
        .send(addr)?;
    assert!(
        (400..500).contains(&mismatch.status),
        "Content-Range longer than the body: {} {}",
        mismatch.status,
        mismatch.text()
    );

    // Closing with the digest of what the refused chunks would have made must fail.
    let mut spliced = data[..10].to_vec();
    spliced.extend_from_slice(&data[20..]);
    let r = Request::put(&with_query(&loc, "digest", &sha256_digest(&spliced))).send(addr)?;
    assert!(
        (400..500).contains(&r.status),
        "PUT after refused chunks: {} {}",
        r.status,
        r.text()
    );
    expect_no_blob(addr, REPO, &sha256_digest(&spliced))?;
    expect_no_blob(addr, REPO, &sha256_digest(&data))?;
    still_serving(&mut daemon)
}

#[test]
fn unknown_upload_sessions_and_blobs() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let addr = daemon.addr;
    let digest = sha256_digest(b"nothing");
    let r = Request::get(&format!("/v2/{REPO}/blobs/{digest}")).send(addr)?;
    expect_error(
        "GET unknown blob",
        &r,
        &[404],
        &["BLOB_UNKNOWN", "NAME_UNKNOWN"],
    )?;
    let r = Request::patch(&format!(
        "/v2/{REPO}/blobs/uploads/00000000-0000-0000-0000-000000000000"
    ))
    .body(b"data".to_vec())
    .send(addr)?;
    expect_error(
        "PATCH unknown session",
        &r,
        &[404],
        &["BLOB_UPLOAD_UNKNOWN"],
    )?;
    let r = Request::put(&format!(
        "/v2/{REPO}/blobs/uploads/..%2f..%2fetc?digest={digest}"
    ))
    .body(b"nothing".to_vec())
    .send(addr)?;
    assert!(
        (400..500).contains(&r.status),
        "PUT to a session id with a path trick: {}",
        r.status
    );
    expect_no_blob(addr, REPO, &digest)?;
    let r = Request::get(&format!("/v2/{REPO}/manifests/nope"))
        .header("Accept", OCI_MANIFEST)
        .send(addr)?;
    expect_error(
        "GET unknown manifest",
        &r,
        &[404],
        &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"],
    )?;
    still_serving(&mut daemon)
}
