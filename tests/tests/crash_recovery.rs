//! kill -9 of berthd in the middle of a large push; after a restart on the same root no
//! partial or wrong blob is visible, and the push can be done again.

use berth_e2e::http::Request;
use berth_e2e::{Berthd, fixture, layout, sha256_digest, suites};
use std::path::Path;
use std::time::{Duration, Instant};

fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[test]
fn kill9_during_large_push_leaves_no_partial_blob() -> anyhow::Result<()> {
    let image = fixture::sized(96)?;
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let before = bytes_under(&daemon.root);
    let dest = format!("docker://{}/e2e/crash:v1", daemon.registry());
    let mut push = berth_e2e::skopeo::skopeo_command(&[
        "copy",
        "--dest-tls-verify=false",
        &image.oci_ref(),
        &dest,
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()?;

    // Kill once a good part of the data (but not all of it) has reached the daemon.
    let started = Instant::now();
    let threshold = before + image.blob_bytes() / 4;
    while bytes_under(&daemon.root) < threshold && started.elapsed() < Duration::from_secs(120) {
        if push.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = bytes_under(&daemon.root);
    daemon.kill9();
    let status = push.wait()?;
    eprintln!(
        "killed berthd with {} MiB under its root; skopeo exited with {status}",
        seen / 1_048_576
    );

    daemon.restart()?;
    let checked = layout::verify_content_addressed(&daemon.root)?;
    eprintln!("after restart: {checked} content-addressed files under the root, all verified");

    // Whatever the registry admits to having is whole and correct.
    let addr = daemon.addr;
    for digest in &image.blobs {
        let head = Request::head(&format!("/v2/e2e/crash/blobs/{digest}")).send(addr)?;
        match head.status {
            404 => {}
            200 => {
                let size = std::fs::metadata(layout::blob_path(&image.dir, digest))?.len();
                assert_eq!(
                    head.header("content-length"),
                    Some(size.to_string().as_str())
                );
                let get = Request::get(&format!("/v2/e2e/crash/blobs/{digest}"))
                    .timeout(Duration::from_secs(120))
                    .send(addr)?;
                assert_eq!(get.status, 200);
                assert_eq!(
                    sha256_digest(&get.body),
                    *digest,
                    "blob served after the crash is wrong"
                );
            }
            other => anyhow::bail!("HEAD blob {digest} after restart: {other}"),
        }
    }
    let head = Request::head("/v2/e2e/crash/manifests/v1")
        .header("Accept", suites::OCI_MANIFEST)
        .send(addr)?;
    if head.status == 200 {
        assert_eq!(
            head.header("docker-content-digest"),
            Some(image.manifest_digest.as_str())
        );
    } else {
        assert_eq!(head.status, 404, "HEAD manifest after restart");
    }

    // The push, done again, succeeds and round-trips.
    suites::skopeo_roundtrip(&image, &daemon.registry(), "e2e/crash", "v1", None)?;
    // The content store keeps blobs at ROOT/blobs/sha256/HEX (core/content): the check above
    // must have seen at least this image's config and layers, or it checked nothing.
    let checked = layout::verify_content_addressed(&daemon.root)?;
    anyhow::ensure!(
        checked >= image.blobs.len(),
        "only {checked} files named by digest under {}/**/blobs/: has the blob layout changed?",
        daemon.root.display()
    );
    Ok(())
}

/// A chunked upload outlives a kill -9 of the daemon: after the restart its
/// status reports the bytes received, the rest can be sent, and the blob
/// that results is exactly the intended one.
#[test]
fn chunked_upload_resumes_after_kill9() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let digest = sha256_digest(&data);
    let (first, rest) = data.split_at(1_000_000);

    let start = Request::post("/v2/e2e/resume/blobs/uploads/").send(daemon.addr)?;
    assert_eq!(start.status, 202, "{}", start.text());
    let location = start.location()?;
    let patch = Request::patch(&location)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", &format!("0-{}", first.len() - 1))
        .body(first.to_vec())
        .send(daemon.addr)?;
    assert_eq!(patch.status, 202, "{}", patch.text());
    let location = patch.location()?;

    daemon.kill9();
    daemon.restart()?;

    let status = Request::get(&location).send(daemon.addr)?;
    assert_eq!(status.status, 204, "{}", status.text());
    assert_eq!(status.header("Range"), Some("0-999999"));
    let patch = Request::patch(&location)
        .header("Content-Type", "application/octet-stream")
        .header(
            "Content-Range",
            &format!("{}-{}", first.len(), data.len() - 1),
        )
        .body(rest.to_vec())
        .send(daemon.addr)?;
    assert_eq!(patch.status, 202, "{}", patch.text());
    let done = Request::put(&berth_e2e::http::with_query(
        &patch.location()?,
        "digest",
        &digest,
    ))
    .send(daemon.addr)?;
    assert_eq!(done.status, 201, "{}", done.text());

    let got = Request::get(&format!("/v2/e2e/resume/blobs/{digest}")).send(daemon.addr)?;
    assert_eq!(got.status, 200);
    assert_eq!(sha256_digest(&got.body), digest);
    layout::verify_content_addressed(&daemon.root)?;
    Ok(())
}
