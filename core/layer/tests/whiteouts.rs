#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Whiteout and opaque-directory semantics, in both modes: as overlayfs
//! markers in an upper directory, and as deletions when flattening.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_layer::{ApplyOptions, WhiteoutMode, apply, apply_fresh};
use berth_oci::media_types::{OCI_LAYER, OCI_LAYER_ZSTD};
use common::{RawTar, xattr_get, zstd};

fn flatten() -> ApplyOptions {
    ApplyOptions {
        whiteouts: WhiteoutMode::Flatten,
        ..ApplyOptions::default()
    }
}

fn is_whiteout(p: &Path) -> bool {
    let m = std::fs::symlink_metadata(p).unwrap();
    m.file_type().is_char_device() && m.rdev() == 0
}

fn base_layer() -> Vec<u8> {
    let mut t = RawTar::new();
    t.dir("d/")
        .file("d/old", b"old")
        .dir("d/sub/")
        .file("d/sub/deep", b"deep")
        .file("gone", b"bye")
        .dir("gonedir/")
        .file("gonedir/x", b"x")
        .file("keep", b"keep");
    t.finish()
}

fn upper_layer() -> Vec<u8> {
    let mut t = RawTar::new();
    t.dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"new")
        .file(".wh.gone", b"")
        .file(".wh.gonedir", b"")
        .dir("e/");
    t.finish()
}

#[test]
fn overlay_mode_writes_markers() {
    let scratch = tempfile::tempdir().unwrap();
    let upper = scratch.path().join("upper");
    let mut layer = upper_layer();
    let mut extra = RawTar::new();
    extra.file("e/.wh.nothing-below", b"");
    // Splice: drop the first layer's end-of-archive blocks.
    layer.truncate(layer.len() - 1024);
    layer.extend_from_slice(&extra.finish());
    let stats = apply_fresh(
        &upper,
        OCI_LAYER_ZSTD,
        &zstd(&layer)[..],
        None,
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(stats.whiteouts, 4);
    assert!(is_whiteout(&upper.join("gone")));
    assert!(is_whiteout(&upper.join("gonedir")));
    assert!(is_whiteout(&upper.join("e/nothing-below")));
    assert_eq!(
        xattr_get(&upper.join("d"), "trusted.overlay.opaque").unwrap(),
        b"y"
    );
    assert_eq!(std::fs::read(upper.join("d/new")).unwrap(), b"new");
    assert!(!upper.join(".wh.gone").exists());
    assert!(!upper.join("d/.wh..wh..opq").exists());
}

#[test]
fn overlay_markers_work_under_a_real_overlay_mount() {
    let scratch = tempfile::tempdir().unwrap();
    let (lower, upper, work, merged) = (
        scratch.path().join("lower"),
        scratch.path().join("upper"),
        scratch.path().join("work"),
        scratch.path().join("merged"),
    );
    apply_fresh(
        &lower,
        OCI_LAYER,
        &base_layer()[..],
        None,
        &ApplyOptions::default(),
    )
    .unwrap();
    apply_fresh(
        &upper,
        OCI_LAYER,
        &upper_layer()[..],
        None,
        &ApplyOptions::default(),
    )
    .unwrap();
    std::fs::create_dir(&work).unwrap();
    std::fs::create_dir(&merged).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let status = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "mounting overlay failed");
    let mut seen: Vec<String> = walkdir(&merged);
    seen.sort();
    std::process::Command::new("umount")
        .arg(&merged)
        .status()
        .unwrap();
    assert_eq!(seen, ["d", "d/new", "e", "keep"]);
}

fn walkdir(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn flatten_mode_deletes() {
    let scratch = tempfile::tempdir().unwrap();
    let rootfs = scratch.path().join("rootfs");
    apply_fresh(&rootfs, OCI_LAYER, &base_layer()[..], None, &flatten()).unwrap();
    apply(&rootfs, OCI_LAYER, &upper_layer()[..], None, &flatten()).unwrap();
    let mut seen = walkdir(&rootfs);
    seen.sort();
    assert_eq!(seen, ["d", "d/new", "e", "keep"]);
    // No overlay marker is written when flattening.
    assert!(xattr_get(&rootfs.join("d"), "trusted.overlay.opaque").is_err());
}

#[test]
fn opaque_marker_after_children_keeps_them() {
    // Whiteouts hide lower layers only: entries of the same layer survive
    // whatever order the tar lists them in.
    let scratch = tempfile::tempdir().unwrap();
    let rootfs = scratch.path().join("rootfs");
    apply_fresh(&rootfs, OCI_LAYER, &base_layer()[..], None, &flatten()).unwrap();
    let mut t = RawTar::new();
    t.file("d/sub/fresh", b"fresh")
        .file("d/.wh..wh..opq", b"")
        .file("keep2", b"k")
        .file(".wh.keep2", b"");
    apply(&rootfs, OCI_LAYER, &t.finish()[..], None, &flatten()).unwrap();
    let mut seen = walkdir(&rootfs);
    seen.sort();
    assert_eq!(
        seen,
        [
            "d",
            "d/sub",
            "d/sub/fresh",
            "gone",
            "gonedir",
            "gonedir/x",
            "keep",
            "keep2"
        ]
    );
}

#[test]
fn whiteout_replaced_by_later_entry_in_overlay_mode() {
    let scratch = tempfile::tempdir().unwrap();
    let upper = scratch.path().join("upper");
    let mut t = RawTar::new();
    t.file(".wh.x", b"").file("x", b"back");
    apply_fresh(
        &upper,
        OCI_LAYER,
        &t.finish()[..],
        None,
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(upper.join("x")).unwrap(), b"back");
}
