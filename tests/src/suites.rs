//! Checks shared by several tests: registry round trips and blob/manifest pushes over raw
//! HTTP.

use crate::http::{Request, Response, with_query};
use crate::{Image, layout, sha256_digest};
use std::net::SocketAddr;

/// Media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Credentials as `user:password`.
pub type Creds<'a> = Option<&'a str>;

/// Pushes `image` to `docker://HOST/REPO:TAG` with skopeo, checks the registry serves the
/// manifest byte for byte, copies it back into a fresh OCI layout and compares digests and
/// blobs with the original.
pub fn skopeo_roundtrip(
    image: &Image,
    host: &str,
    repo: &str,
    tag: &str,
    creds: Creds<'_>,
) -> anyhow::Result<()> {
    let remote = format!("docker://{host}/{repo}:{tag}");
    crate::skopeo::copy(&image.oci_ref(), &remote, None, creds)?;

    let mut inspect = vec![
        "inspect".to_string(),
        "--raw".into(),
        "--tls-verify=false".into(),
    ];
    if let Some(c) = creds {
        inspect.push(format!("--creds={c}"));
    }
    inspect.push(remote.clone());
    let refs: Vec<&str> = inspect.iter().map(String::as_str).collect();
    let raw = crate::skopeo::skopeo(&refs)?;
    anyhow::ensure!(
        raw.status.success(),
        "skopeo inspect --raw {remote}: {}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let served = sha256_digest(&raw.stdout);
    anyhow::ensure!(
        served == image.manifest_digest,
        "{remote} serves a manifest with digest {served}, pushed {}",
        image.manifest_digest
    );

    let back = tempfile::Builder::new().prefix("e2e-pulled-").tempdir()?;
    let dest = format!("oci:{}:{tag}", back.path().display());
    crate::skopeo::copy(&remote, &dest, creds, None)?;
    layout::assert_same_image(image, back.path(), tag)
}

/// Copies `docker://HOST/REPO:TAG` into a fresh layout and compares it with `image`.
pub fn pull_and_compare(
    image: &Image,
    host: &str,
    repo: &str,
    tag: &str,
    creds: Creds<'_>,
) -> anyhow::Result<()> {
    let back = tempfile::Builder::new().prefix("e2e-pulled-").tempdir()?;
    crate::skopeo::copy(
        &format!("docker://{host}/{repo}:{tag}"),
        &format!("oci:{}:{tag}", back.path().display()),
        creds,
        None,
    )?;
    layout::assert_same_image(image, back.path(), tag)
        .map_err(|e| anyhow::anyhow!("{host}/{repo}:{tag}: {e}"))
}

/// Uploads a blob monolithically (POST then PUT with the whole body); returns the final
/// response (201 on success).
pub fn push_blob(
    addr: SocketAddr,
    repo: &str,
    bytes: &[u8],
    digest: &str,
) -> anyhow::Result<Response> {
    let start = Request::post(&format!("/v2/{repo}/blobs/uploads/")).send(addr)?;
    anyhow::ensure!(
        start.status == 202,
        "POST upload to {repo}: {} {}",
        start.status,
        start.text()
    );
    Request::put(&with_query(&start.location()?, "digest", digest))
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec())
        .send(addr)
}

/// A tiny valid image (config + one layer) pushed over raw HTTP; returns the manifest bytes.
pub fn push_tiny_image(
    addr: SocketAddr,
    repo: &str,
    tag: &str,
    salt: &str,
) -> anyhow::Result<Vec<u8>> {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{"Labels":{{"salt":"{salt}"}}}}}}"#
    );
    let layer = format!("not really a tarball, salt {salt}").into_bytes();
    for blob in [config.as_bytes(), layer.as_slice()] {
        let r = push_blob(addr, repo, blob, &sha256_digest(blob))?;
        anyhow::ensure!(
            r.status == 201,
            "blob push to {repo}: {} {}",
            r.status,
            r.text()
        );
    }
    let manifest = tiny_manifest(config.as_bytes(), &layer);
    let r = Request::put(&format!("/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest.clone())
        .send(addr)?;
    anyhow::ensure!(
        r.status == 201,
        "manifest push to {repo}:{tag}: {} {}",
        r.status,
        r.text()
    );
    Ok(manifest)
}

/// An OCI manifest naming this config and one layer.
pub fn tiny_manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256_digest(layer), "size": layer.len()}]
    })
    .to_string()
    .into_bytes()
}

/// Asserts a 4xx status and, in the JSON error body, one of `codes`.
pub fn expect_error(
    what: &str,
    resp: &Response,
    statuses: &[u16],
    codes: &[&str],
) -> anyhow::Result<()> {
    anyhow::ensure!(
        statuses.contains(&resp.status),
        "{what}: status {} (wanted one of {statuses:?}); body {:?}",
        resp.status,
        resp.text()
    );
    let got = resp.error_codes();
    anyhow::ensure!(
        got.iter().any(|c| codes.contains(&c.as_str())),
        "{what}: status {} with error codes {got:?} (wanted one of {codes:?}); body {:?}",
        resp.status,
        resp.text()
    );
    for code in &got {
        anyhow::ensure!(
            crate::http::SPEC_ERROR_CODES.contains(&code.as_str()),
            "{what}: {code} is not an OCI distribution error code"
        );
    }
    Ok(())
}

/// Asserts `HEAD /v2/REPO/blobs/DIGEST` answers 404 (the blob is not there).
pub fn expect_no_blob(addr: SocketAddr, repo: &str, digest: &str) -> anyhow::Result<()> {
    let r = Request::head(&format!("/v2/{repo}/blobs/{digest}")).send(addr)?;
    anyhow::ensure!(
        r.status == 404,
        "HEAD {repo} blob {digest}: {} (wanted 404: nothing stored)",
        r.status
    );
    Ok(())
}

/// Asserts a repository has no tags: tags/list is 404, or lists none.
pub fn expect_no_tags(addr: SocketAddr, repo: &str) -> anyhow::Result<()> {
    let r = Request::get(&format!("/v2/{repo}/tags/list")).send(addr)?;
    if r.status == 404 {
        return Ok(());
    }
    anyhow::ensure!(
        r.status == 200,
        "tags/list of {repo}: {} {}",
        r.status,
        r.text()
    );
    let v = r.json()?;
    let tags = v
        .get("tags")
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default();
    anyhow::ensure!(
        tags.is_empty(),
        "{repo} has tags {tags:?} after rejected pushes"
    );
    Ok(())
}
