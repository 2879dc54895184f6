//! The harness checked against real peers alone: the fixture builder, skopeo with a private
//! cache, docker-registry with and without htpasswd, and the raw HTTP client. These pass
//! without berth; if they fail, every other e2e failure is suspect.

use berth_e2e::http::Request;
use berth_e2e::suites::{self, expect_error, expect_no_blob};
use berth_e2e::{DockerRegistry, RegistryOpts, fixture, layout, sha256_digest};

#[test]
fn fixture_is_deterministic_three_layers_with_whiteout() -> anyhow::Result<()> {
    let image = fixture::small()?;
    assert_eq!(image.blobs.len(), 4, "config + 3 layers");
    // Verified by a peer: skopeo reads the layout and sees three layers.
    let inspect = berth_e2e::skopeo_ok(&["inspect", &image.oci_ref()])?;
    let v: serde_json::Value = serde_json::from_str(&inspect)?;
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(3), "{inspect}");
    assert_eq!(v["Digest"].as_str(), Some(image.manifest_digest.as_str()));
    assert!(layout::verify_content_addressed(&image.dir)? >= 5);

    // Built again from scratch, it is byte-identical.
    let again = tempfile::tempdir()?;
    berth_e2e::run_ok(
        std::process::Command::new("bash")
            .arg(fixture::script())
            .arg(again.path()),
    )?;
    layout::assert_same_image(&image, again.path(), "latest")?;

    // Layer 3 carries the whiteout; variants share layers 1 and 2 only.
    let layer3 = layout::blob_path(&image.dir, &image.blobs[3]);
    let listing = berth_e2e::run_ok(std::process::Command::new("tar").arg("-tzf").arg(&layer3))?;
    assert!(listing.contains("tmp/.wh.removeme"), "{listing}");
    let v1 = fixture::variant(1)?;
    assert_eq!(v1.blobs[1..3], image.blobs[1..3]);
    assert_ne!(v1.blobs[3], image.blobs[3]);
    Ok(())
}

#[test]
fn skopeo_roundtrip_through_docker_registry() -> anyhow::Result<()> {
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let image = fixture::small()?;
    suites::skopeo_roundtrip(&image, &reg.host(), "e2e/busybox", "v1", None)?;
    // A second push of the same image to a fresh repository works (private cache each time).
    suites::skopeo_roundtrip(&image, &reg.host(), "e2e/again", "v2", None)
}

#[test]
fn docker_registry_with_htpasswd_needs_credentials() -> anyhow::Result<()> {
    let reg = DockerRegistry::start(RegistryOpts {
        htpasswd: Some(("alice".into(), "wonderland".into())),
        ..RegistryOpts::default()
    })?;
    let image = fixture::small()?;
    let anonymous = berth_e2e::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &image.oci_ref(),
        &format!("docker://{}/e2e/anon:v1", reg.host()),
    ])?;
    assert!(
        !anonymous.status.success(),
        "anonymous push to an htpasswd registry succeeded"
    );
    suites::skopeo_roundtrip(
        &image,
        &reg.host(),
        "e2e/auth",
        "v1",
        Some("alice:wonderland"),
    )?;
    let r = Request::get("/v2/")
        .basic_auth("alice", "wonderland")
        .send(reg.addr)?;
    assert_eq!(r.status, 200);
    Ok(())
}

/// The raw client against the reference implementation: a wrong digest is DIGEST_INVALID
/// and stores nothing; a good tiny image goes in.
#[test]
fn raw_http_client_against_docker_registry() -> anyhow::Result<()> {
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let body = b"hello, registry".to_vec();
    let wrong = sha256_digest(b"something else");
    let r = suites::push_blob(reg.addr, "e2e/raw", &body, &wrong)?;
    expect_error("PUT with the wrong digest", &r, &[400], &["DIGEST_INVALID"])?;
    expect_no_blob(reg.addr, "e2e/raw", &sha256_digest(&body))?;
    expect_no_blob(reg.addr, "e2e/raw", &wrong)?;
    let manifest = suites::push_tiny_image(reg.addr, "e2e/raw", "v1", "x")?;
    let r = Request::get("/v2/e2e/raw/manifests/v1")
        .header("Accept", suites::OCI_MANIFEST)
        .send(reg.addr)?;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, manifest);
    Ok(())
}
