//! Repository names that contain the words the registry's routes are made
//! of (`blobs`, `manifests`, `tags`, `list`, `uploads`, `referrers`): valid
//! by the distribution spec's grammar, so a client may push them, and each
//! request must reach that repository and no other. Pushed and pulled with
//! skopeo, with berth's own client, and checked over raw HTTP.

use berth_e2e::containers::{BUSYBOX, import_busybox};
use berth_e2e::http::Request;
use berth_e2e::{Berthd, fixture, sha256_digest, suites};

/// One name per way the old parser went wrong (a route word followed by a
/// blob, a manifest, an upload or a listing), and names that are all route
/// words.
const TRICKY: &[&str] = &[
    "a/blobs/uploads",
    "x/manifests/y",
    "tags/list",
    "a/manifests/blobs",
    "r/referrers/blobs",
    "blobs/uploads/manifests/tags",
];

#[test]
fn skopeo_round_trips_through_repositories_named_like_routes() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let image = fixture::small()?;
    for repo in TRICKY {
        suites::skopeo_roundtrip(&image, &daemon.registry(), repo, "1", None)
            .map_err(|e| anyhow::anyhow!("{repo}: {e}"))?;
        let tags = Request::get(&format!("/v2/{repo}/tags/list")).send(daemon.addr)?;
        assert_eq!(tags.status, 200, "{repo}: {}", tags.text());
        assert_eq!(tags.json()?["name"], serde_json::json!(repo));
        assert_eq!(tags.json()?["tags"], serde_json::json!(["1"]));
    }
    // The catalog has each of them, under its own name.
    let catalog = Request::get("/v2/_catalog").send(daemon.addr)?;
    let names = catalog.json()?["repositories"].clone();
    for repo in TRICKY {
        assert!(
            names
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n == repo)),
            "{repo} not in {names}"
        );
    }
    Ok(())
}

#[test]
fn a_blob_of_a_manifests_repository_is_a_blob_not_a_manifest() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let manifest = suites::push_tiny_image(daemon.addr, "a/manifests", "v1", "names")?;
    let layer = b"not really a tarball, salt names";
    let digest = sha256_digest(layer);
    // `a/manifests` + `blobs/DIGEST`, which once read as manifest
    // `blobs/DIGEST` of `a`.
    let blob = Request::get(&format!("/v2/a/manifests/blobs/{digest}")).send(daemon.addr)?;
    assert_eq!(blob.status, 200, "{}", blob.text());
    assert_eq!(blob.body, layer);
    let by_tag = Request::get("/v2/a/manifests/manifests/v1")
        .header("Accept", suites::OCI_MANIFEST)
        .send(daemon.addr)?;
    assert_eq!(by_tag.status, 200, "{}", by_tag.text());
    assert_eq!(by_tag.body, manifest);
    // Repository `a` was never pushed: nothing answers for it.
    let other = Request::get(&format!("/v2/a/blobs/{digest}")).send(daemon.addr)?;
    assert_eq!(other.status, 404, "{}", other.text());
    let referrers = Request::get(&format!(
        "/v2/a/manifests/referrers/{}",
        sha256_digest(&manifest)
    ))
    .send(daemon.addr)?;
    assert_eq!(referrers.status, 200, "{}", referrers.text());
    Ok(())
}

#[test]
fn berths_client_pushes_and_pulls_repositories_named_like_routes() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    for repo in ["a/blobs/uploads", "x/manifests/y", "tags/list"] {
        let reference = format!("{}/{repo}:2", daemon.registry());
        daemon.berth_ok(&["tag", BUSYBOX, &reference])?;
        daemon.berth_ok(&["push", &reference])?;
        daemon.berth_ok(&["rmi", &reference])?;
        daemon.berth_ok(&["pull", &reference])?;
        let images = daemon.berth_ok(&["images"])?;
        assert!(images.contains(repo), "{repo} not pulled back: {images}");
        let tags = Request::get(&format!("/v2/{repo}/tags/list")).send(daemon.addr)?;
        assert_eq!(tags.json()?["tags"], serde_json::json!(["2"]), "{repo}");
    }
    Ok(())
}
