#![allow(clippy::unwrap_used, reason = "test code")]
//! Malicious layers through the real pull path: hand-made images pushed to docker-registry
//! with skopeo, then `berth pull` from it. Each is refused with a clear error, no snapshot of
//! the bad layer is left (`ROOT/snapshots/snapshots/` gains a directory only for each good
//! layer below the bad one, which a later pull may reuse), and the daemon keeps serving.

use berth_e2e::images::{self, TarBuilder};
use berth_e2e::{Berthd, DockerRegistry, RegistryOpts, fixture, skopeo};

/// A good first layer: an ordinary directory tree.
fn base_layer() -> Vec<u8> {
    TarBuilder::new()
        .dir("etc/", 0o755)
        .file("etc/hostname", 0o644, b"berth\n")
        .dir("srv/", 0o755)
        .finish()
}

/// Pushes `layers` (with lying `diff_ids` if given) as `REG/e2e/REPO:v1`, pulls it with
/// berth, and checks it is refused with a message containing every one of `expect`, that
/// only the `good_below` layers under the bad (last) one got snapshot directories, and that
/// the daemon still pulls a good image.
fn pull_refused(
    repo: &str,
    good_below: usize,
    layers: &[Vec<u8>],
    diff_ids: Option<Vec<String>>,
    expect: &[&str],
) -> anyhow::Result<()> {
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let tmp = tempfile::tempdir()?;
    let image = images::write_layout(&tmp.path().join("layout"), "v1", layers, diff_ids)?;
    let src = format!("{}/e2e/{repo}:v1", reg.host());
    skopeo::copy(&image.oci_ref(), &format!("docker://{src}"), None, None)?;

    let snapshots_before = images::snapshot_ids(&daemon.root);
    let out = daemon.berth(&["pull", &src])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("berth pull {src}: {}\nstderr:\n{stderr}", out.status);
    assert!(
        !out.status.success(),
        "berth pull of a malicious image succeeded; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for e in expect {
        assert!(
            stderr.contains(e),
            "the error of berth pull does not say {e:?}:\n{stderr}"
        );
    }
    daemon.check_alive()?;
    let snapshots_after = images::snapshot_ids(&daemon.root);
    assert!(
        snapshots_before.is_subset(&snapshots_after)
            && snapshots_after.len() == snapshots_before.len() + good_below,
        "a refused pull should leave only the {good_below} good layer(s) below the bad one \
         committed, but {} holds {snapshots_after:?} (before: {snapshots_before:?})",
        images::snapshots_dir(&daemon.root).display()
    );
    let listed = daemon.berth_ok(&["images"])?;
    assert!(
        !listed.contains(&format!("e2e/{repo}")),
        "the refused image is listed by berth images:\n{listed}"
    );
    // Nothing escaped next to the snapshot directories or the root.
    for p in [
        daemon.root.join("escape"),
        images::snapshots_dir(&daemon.root).join("escape"),
        daemon.root.join("snapshots").join("escape"),
        daemon.dir().join("escape"),
    ] {
        assert!(!p.exists(), "{} was written by the layer", p.display());
    }

    // The daemon keeps serving: a good image from the same registry pulls.
    let good = fixture::small()?;
    let good_ref = format!("{}/e2e/good:v1", reg.host());
    skopeo::copy(&good.oci_ref(), &format!("docker://{good_ref}"), None, None)?;
    daemon.berth_ok(&["pull", &good_ref])?;
    let after_good = images::snapshot_ids(&daemon.root);
    assert_eq!(
        after_good.len(),
        snapshots_after.len() + 3,
        "a good 3-layer pull after the refused one: snapshot dirs {after_good:?}"
    );
    Ok(())
}

#[test]
fn pull_refuses_path_traversal_layer() -> anyhow::Result<()> {
    let evil = TarBuilder::new()
        .file("srv/ok", 0o644, b"fine\n")
        .file("../escape", 0o644, b"out of the snapshot\n")
        .finish();
    // Alone in its image: nothing at all may be committed.
    pull_refused("traversal", 0, &[evil], None, &["../escape", "refused"])
}

#[test]
fn pull_refuses_symlink_escape_layer() -> anyhow::Result<()> {
    let evil = TarBuilder::new()
        .symlink("srv/out", "../../../../../../")
        .file("srv/out/escape", 0o644, b"through the link\n")
        .finish();
    pull_refused(
        "symlink-escape",
        1,
        &[base_layer(), evil],
        None,
        &["srv/out", "symlink"],
    )
}

#[test]
fn pull_refuses_hard_link_outside() -> anyhow::Result<()> {
    let evil = TarBuilder::new()
        .hardlink("srv/passwd", "../../../../etc/passwd")
        .finish();
    pull_refused(
        "hardlink-outside",
        1,
        &[base_layer(), evil],
        None,
        &["srv/passwd"],
    )
}

#[test]
fn pull_refuses_wrong_diff_id() -> anyhow::Result<()> {
    let second = TarBuilder::new()
        .file("srv/data.txt", 0o644, b"the second layer\n")
        .finish();
    let wrong = berth_e2e::sha256_digest(b"not the layer");
    let diff_ids = vec![berth_e2e::sha256_digest(&base_layer()), wrong.clone()];
    pull_refused(
        "wrong-diffid",
        1,
        &[base_layer(), second],
        Some(diff_ids),
        &["diffID", &wrong],
    )
}
