#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Layers written by other tools apply as they describe, and berth's own
//! layers read back with GNU tar.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use berth_layer::{ApplyOptions, Compression, apply_fresh, diff};
use berth_oci::media_types::{OCI_LAYER, OCI_LAYER_GZIP};
use common::{set_xattr, sha256, snapshot};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gnu_tar_pax_layer_with_xattrs_and_long_names() {
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    let deep = src.join("x".repeat(120)).join("y".repeat(120));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("z".repeat(150)), b"deep").unwrap();
    std::fs::write(src.join("f"), b"hello").unwrap();
    set_xattr(&src.join("f"), "user.k", b"v");
    std::os::unix::fs::symlink("f", src.join("s")).unwrap();
    std::fs::hard_link(src.join("f"), src.join("h")).unwrap();
    let blob = scratch.path().join("layer.tar.gz");
    run(Command::new("tar")
        .args([
            "--format=pax",
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-czf",
        ])
        .arg(&blob)
        .arg("-C")
        .arg(&src)
        .arg("."));

    let dst = scratch.path().join("dst");
    let data = std::fs::read(&blob).unwrap();
    let stats = apply_fresh(
        &dst,
        OCI_LAYER_GZIP,
        &data[..],
        None,
        &ApplyOptions::default(),
    )
    .unwrap();
    // GNU tar also applies the root entry "./"; compare below it.
    let (a, b) = (snapshot(&src), snapshot(&dst));
    assert_eq!(a, b);
    assert_eq!(
        std::fs::metadata(dst.join("f")).unwrap().ino(),
        std::fs::metadata(dst.join("h")).unwrap().ino()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc {} | sha256sum", blob.display()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(stats.diff_id.hex()));
}

#[test]
fn gnu_tar_reads_berth_layers() {
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    std::fs::create_dir_all(src.join("d".repeat(110))).unwrap();
    std::fs::write(src.join("d".repeat(110)).join("e".repeat(110)), b"x").unwrap();
    std::fs::write(src.join("plain"), b"plain").unwrap();
    let mut blob = Vec::new();
    let d = diff(&src, Compression::None, &mut blob).unwrap();
    assert_eq!(d.diff_id, sha256(&blob));
    let path = scratch.path().join("l.tar");
    std::fs::write(&path, &blob).unwrap();
    let dst = scratch.path().join("gnu");
    std::fs::create_dir(&dst).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&path)
        .arg("-C")
        .arg(&dst));
    assert_eq!(snapshot(&src), snapshot(&dst));
    // And berth applies what it wrote.
    let again = scratch.path().join("again");
    apply_fresh(
        &again,
        OCI_LAYER,
        &blob[..],
        Some(&d.diff_id),
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(snapshot(&src), snapshot(&again));
}
