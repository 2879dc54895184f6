#![allow(clippy::unwrap_used, reason = "tests panic on failure")]
//! The overlay snapshotter: the shared conformance suite with real mounts,
//! and what is particular to overlayfs.

use std::path::Path;

use berth_snapshot::{Labels, OverlaySnapshotter, Snapshotter};

fn open(dir: &Path) -> Box<dyn Snapshotter> {
    let state = berth_state::State::open(dir.join("state")).unwrap();
    Box::new(OverlaySnapshotter::open(dir.join("overlay"), &state).unwrap())
}

berth_snapshot::snapshotter_conformance!(open);

#[test]
fn directories_without_metadata_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let snap = open(dir.path());
    snap.prepare("kept", None, Labels::new()).unwrap();
    drop(snap);
    let leftover = dir.path().join("overlay/snapshots/4242/fs");
    std::fs::create_dir_all(&leftover).unwrap();
    let snap = open(dir.path());
    assert!(!leftover.parent().unwrap().exists());
    snap.stat("kept").unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("overlay/snapshots"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn mounts_have_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let snap = open(dir.path());
    let m = snap.prepare("lone", None, Labels::new()).unwrap();
    assert_eq!(
        (m[0].fs_type.as_str(), m[0].options.as_slice()),
        (
            "bind",
            &[
                "rbind".to_string(),
                "rw".into(),
                "nosuid".into(),
                "nodev".into()
            ][..]
        )
    );
    snap.commit("c1", "lone", Labels::new()).unwrap();
    let m = snap.view("v1", Some("c1"), Labels::new()).unwrap();
    assert_eq!(
        (m[0].fs_type.as_str(), m[0].options.as_slice()),
        (
            "bind",
            &[
                "rbind".to_string(),
                "ro".into(),
                "nosuid".into(),
                "nodev".into()
            ][..]
        )
    );
    let m = snap.prepare("a", Some("c1"), Labels::new()).unwrap();
    assert_eq!(m[0].fs_type, "overlay");
    let opts = m[0].options.join(",");
    assert!(
        opts.contains("lowerdir=") && opts.contains("upperdir=") && opts.contains("workdir="),
        "{opts}"
    );
    if Path::new("/sys/module/overlay/parameters/index").exists() {
        assert!(opts.contains("index=off"), "{opts}");
    }
    snap.commit("c2", "a", Labels::new()).unwrap();
    let m = snap.view("v2", Some("c2"), Labels::new()).unwrap();
    let opts = m[0].options.join(",");
    assert!(
        m[0].fs_type == "overlay" && !opts.contains("upperdir"),
        "{opts}"
    );
}

#[test]
fn a_128_layer_overlay_needs_more_than_a_page_of_absolute_paths() {
    // Guards the meaning of the conformance case: with absolute paths the
    // options would not fit, so the mount helper's shortening is exercised.
    let dir = tempfile::tempdir().unwrap();
    let snap = open(dir.path());
    let mut parent: Option<String> = None;
    for i in 0..128 {
        let key = format!("k{i}");
        snap.prepare(&key, parent.as_deref(), Labels::new())
            .unwrap();
        let name = format!("sha256:{i:064x}");
        snap.commit(&name, &key, Labels::new()).unwrap();
        parent = Some(name);
    }
    let m = snap
        .prepare("top", parent.as_deref(), Labels::new())
        .unwrap();
    assert!(m[0].options.join(",").len() > 4096);
    let calls = berth_snapshot::plan(&m[0], Path::new("/mnt")).unwrap();
    assert!(calls[0].cwd.is_some());
    assert!(calls[0].data.as_ref().unwrap().len() < 4096);
}

#[test]
fn the_snapshot_directories_are_private() {
    // An upper dir holds what a container wrote (setuid files, device
    // nodes) on the host's own file system: no local user may reach it.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let snap = open(dir.path());
    snap.prepare("c", None, Labels::new()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let snapshots = dir.path().join("overlay/snapshots");
    assert_eq!(mode(&dir.path().join("overlay")), 0o700);
    assert_eq!(mode(&snapshots), 0o700);
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o700);
    }
}

#[test]
fn is_mounted_sees_a_mount_whose_path_has_a_space() {
    // The mount table spells the space `\040`; a root directory with one
    // must still be seen as mounted (else start-up would delete through
    // the mount, or leave it for ever).
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("my root").join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    assert!(!berth_snapshot::is_mounted(&target));
    nix::mount::mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let mounted = berth_snapshot::is_mounted(&target);
    berth_snapshot::unmount(&target).unwrap();
    assert!(mounted, "a mount on {} is not seen", target.display());
    assert!(!berth_snapshot::is_mounted(&target));
}
