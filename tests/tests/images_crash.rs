//! `kill -9` of berthd in the middle of a pull (of the 96 MB fixture, from docker-registry):
//! after a restart the same pull completes and the image mounts; after `berth rmi` and
//! `berth image prune` (GC grace 0) nothing is left on disk: no snapshot directory, no blob,
//! no stray data anywhere under the root.

use berth_e2e::images::{self, ImageMount};
use berth_e2e::{Berthd, DockerRegistry, RegistryOpts, fixture, skopeo};
use std::process::Stdio;
use std::time::{Duration, Instant};

const CONFIG: &str =
    "[registry]\nauth = \"none\"\nanonymous_pull = true\ntoken_ttl_secs = 300\ngc_grace_secs = 0\n";

/// Every regular file under `dir` with its size, for failure messages.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => out.push(format!("{} ({} bytes)", entry.path().display(), m.len())),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Starts `berth pull src`, kills the daemon with SIGKILL as soon as `ready()` holds, and
/// checks that the pull was really interrupted (the CLI fails).
fn kill_during_pull(
    daemon: &mut Berthd,
    src: &str,
    phase: &str,
    ready: &dyn Fn() -> bool,
) -> anyhow::Result<()> {
    let root = daemon.root.clone();
    let mut pull = daemon
        .berth_command(&["pull", src])?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    let mut finished_early = false;
    while started.elapsed() < Duration::from_secs(120) {
        if pull.try_wait()?.is_some() {
            finished_early = true;
            break;
        }
        if ready() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen_bytes = images::bytes_under(&root);
    let seen_blobs = images::dir_names(&images::blobs_dir(&root)).len();
    let seen_snaps = images::snapshot_ids(&root).len();
    daemon.kill9();
    let status = pull.wait()?;
    eprintln!(
        "{phase}: killed berthd after {:?} with {} MiB under its root, {seen_blobs} blobs, \
         {seen_snaps} snapshot dirs; berth pull exited with {status}",
        started.elapsed(),
        seen_bytes / 1_048_576
    );
    anyhow::ensure!(
        !finished_early,
        "{phase}: the pull finished before the daemon could be killed; the test checked nothing"
    );
    anyhow::ensure!(
        !status.success(),
        "{phase}: berth pull succeeded although its daemon was killed"
    );
    Ok(())
}

#[test]
fn kill9_during_pull_then_pull_completes_and_prune_leaves_nothing() -> anyhow::Result<()> {
    let image = fixture::sized(96)?;
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let src = format!("{}/e2e/crash-pull:v1", reg.host());
    skopeo::copy(&image.oci_ref(), &format!("docker://{src}"), None, None)?;

    let mut daemon = Berthd::start(CONFIG)?;
    let root = daemon.root.clone();
    let blobs = images::blobs_dir(&root);

    // First kill: while blobs are arriving (some complete, a good part of the data in).
    let threshold = images::bytes_under(&root) + image.blob_bytes() / 4;
    kill_during_pull(&mut daemon, &src, "downloading", &|| {
        !images::dir_names(&blobs).is_empty() && images::bytes_under(&root) >= threshold
    })?;
    daemon.restart()?;
    // Second kill: once unpacking has started (a snapshot directory exists), if the pull
    // gets there before finishing; the blobs fetched before are reused.
    kill_during_pull(&mut daemon, &src, "unpacking", &|| {
        !images::snapshot_ids(&root).is_empty()
    })?;

    daemon.restart()?;
    daemon.berth_ok(&["pull", &src])?;
    // The unpack the second kill interrupted may have left its active snapshot; prune is
    // what removes it (below).
    let snaps = images::snapshot_ids(&root);
    eprintln!("after the pull is redone: snapshot dirs {snaps:?}");
    assert!(
        (3..=4).contains(&snaps.len()),
        "after the pull is redone: one snapshot per layer plus at most the interrupted one: {snaps:?}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["image", "inspect", &src])?)?;
    let inspected = inspect
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or(&inspect);
    assert_eq!(
        inspected["manifest"].as_str(),
        Some(image.manifest_digest.as_str()),
        "berth image inspect: {inspect}"
    );
    {
        let mount = ImageMount::new(&daemon, &src)?;
        for (path, layer) in [
            ("opt/blob1.bin", 1),
            ("srv/data/blob2.bin", 2),
            ("srv/data/blob3.bin", 3),
        ] {
            let m = std::fs::metadata(mount.dir.join(path))
                .map_err(|e| anyhow::anyhow!("{path} (layer {layer}) in the mounted image: {e}"))?;
            assert!(
                m.len() >= 20 * 1_048_576,
                "{path} is only {} bytes",
                m.len()
            );
        }
        mount.unmount()?;
    }

    daemon.berth_ok(&["rmi", &src])?;
    // The grace period is counted in whole seconds and excludes the current one, even at
    // `gc_grace_secs = 0` (snapshots: `created < now - grace`; blobs: `modified < now -
    // grace`): a prune in the same second as the pull removes nothing. Wait it out.
    std::thread::sleep(Duration::from_millis(2100));
    let prune = daemon.berth_ok(&["image", "prune"])?;
    eprintln!("berth image prune: {prune}");
    serde_json::from_str::<serde_json::Value>(prune.trim())
        .map_err(|e| anyhow::anyhow!("berth image prune printed no JSON ({e}): {prune}"))?;

    let snaps = images::snapshot_ids(&root);
    let left_blobs = images::dir_names(&blobs);
    let left_bytes = images::bytes_under(&root);
    assert!(
        snaps.is_empty(),
        "snapshot directories left after rmi + prune: {snaps:?}"
    );
    assert!(
        left_blobs.is_empty(),
        "blobs left in {} after rmi + prune: {left_blobs:?}",
        blobs.display()
    );
    assert!(
        left_bytes < 4 * 1_048_576,
        "{} MiB still under the root after rmi + prune (the image is {} MiB):\n{}",
        left_bytes / 1_048_576,
        image.blob_bytes() / 1_048_576,
        files_under(&root).join("\n")
    );
    eprintln!(
        "after rmi + prune: {left_bytes} bytes in {} files under the root",
        files_under(&root).len()
    );
    daemon.check_alive()?;
    Ok(())
}
