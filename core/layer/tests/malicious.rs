#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Layers that try to write outside their snapshot, lie about sizes, are
//! cut short or do not match their diffID: each is refused with an error
//! that names the problem, and nothing is left behind.

mod common;

use std::path::Path;

use berth_layer::{ApplyOptions, LayerError, WhiteoutMode, apply, apply_fresh};
use berth_oci::media_types::{DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP};
use common::{RawTar, gzip, sha256};
use tar::EntryType;

/// Apply `layer` into a fresh dir under a scratch area and check that it was
/// refused, that the fresh dir is gone, and that the scratch area holds
/// nothing but the `outside` marker directory.
fn refused(media_type: &str, layer: &[u8], expected: Option<&berth_oci::Digest>) -> LayerError {
    let scratch = tempfile::tempdir().unwrap();
    let outside = scratch.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = scratch.path().join("snap");
    let err = apply_fresh(
        &target,
        media_type,
        layer,
        expected,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        !target.exists(),
        "refused layer left {} behind",
        target.display()
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something written outside: {err}"
    );
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec!["outside"]);
    eprintln!("refused as expected: {err}");
    err
}

#[test]
fn parent_traversal_is_refused() {
    let mut t = RawTar::new();
    t.file("ok", b"fine").file("../outside/x", b"evil");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(
        matches!(&err, LayerError::UnsafePath { entry, .. } if entry == "../outside/x"),
        "{err}"
    );
    assert!(err.to_string().contains(".."), "{err}");
}

#[test]
fn nested_traversal_is_refused() {
    let mut t = RawTar::new();
    t.dir("a/").file("a/../../outside/x", b"evil");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
}

#[test]
fn absolute_path_is_refused() {
    let marker = format!("/tmp/berth-layer-absolute-{}", std::process::id());
    let mut t = RawTar::new();
    t.file(&marker, b"evil");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("absolute"), "{err}");
    assert!(!Path::new(&marker).exists());
}

#[test]
fn write_through_symlink_in_same_layer_is_refused() {
    // a -> / then a/etc/x: the classic escape. Also a relative variant that
    // points at the scratch area's `outside` directory.
    let mut t = RawTar::new();
    t.symlink("a", "/")
        .file("a/tmp/berth-layer-escape", b"evil");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(
        matches!(&err, LayerError::ThroughSymlink { component, .. } if component == "a"),
        "{err}"
    );
    assert!(!Path::new("/tmp/berth-layer-escape").exists());

    let mut t = RawTar::new();
    t.symlink("b", "../outside").file("b/x", b"evil");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(matches!(err, LayerError::ThroughSymlink { .. }), "{err}");
}

#[test]
fn symlink_planted_by_earlier_layer_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let outside = scratch.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = scratch.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Flatten,
        ..ApplyOptions::default()
    };

    let mut first = RawTar::new();
    first
        .dir("etc/")
        .symlink("etc/conf", outside.to_str().unwrap());
    apply(&target, OCI_LAYER, &first.finish()[..], None, &opts).unwrap();

    for name in ["etc/conf/x", "etc/conf/sub/x"] {
        let mut second = RawTar::new();
        second.file(name, b"evil");
        let err = apply(&target, OCI_LAYER, &second.finish()[..], None, &opts).unwrap_err();
        assert!(
            matches!(&err, LayerError::ThroughSymlink { component, .. } if component == "etc/conf"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
    // A whiteout through the symlink must not delete outside files either.
    std::fs::write(outside.join("victim"), b"keep").unwrap();
    let mut third = RawTar::new();
    third.file("etc/conf/.wh.victim", b"");
    let err = apply(&target, OCI_LAYER, &third.finish()[..], None, &opts).unwrap_err();
    assert!(matches!(err, LayerError::ThroughSymlink { .. }), "{err}");
    assert!(outside.join("victim").exists());
}

#[test]
fn hard_link_outside_is_refused() {
    let mut t = RawTar::new();
    t.hardlink("l", "../../etc/passwd");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(
        matches!(&err, LayerError::LinkOutside { target, .. } if target == "../../etc/passwd"),
        "{err}"
    );

    let mut t = RawTar::new();
    t.hardlink("l", "/etc/passwd");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(matches!(err, LayerError::LinkOutside { .. }), "{err}");

    // Through a symlink that points outside.
    let mut t = RawTar::new();
    t.symlink("s", "/etc").hardlink("l", "s/passwd");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(matches!(err, LayerError::LinkOutside { .. }), "{err}");

    // To something that is not there.
    let mut t = RawTar::new();
    t.hardlink("l", "missing");
    let err = refused(OCI_LAYER, &t.finish(), None);
    assert!(matches!(err, LayerError::LinkOutside { .. }), "{err}");
}

#[test]
fn huge_file_claim_is_refused() {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_path("big").unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(1 << 40);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[7u8; 4096]);
    let err = refused(OCI_LAYER_GZIP, &gzip(&tar), None);
    assert!(
        matches!(err, LayerError::FileTooLarge { size, .. } if size == 1 << 40),
        "{err}"
    );
    assert!(err.to_string().contains("max_file_size"), "{err}");
}

/// GNU's base-256 numeric field, for values too large for octal.
fn base256(v: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[4..].copy_from_slice(&v.to_be_bytes());
    f[0] = 0x80;
    f
}

#[test]
fn huge_sparse_claim_is_refused() {
    // A GNU sparse file: 512 real bytes claiming to be 1 TB once expanded.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_path("sparse").unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(512);
    let g = h.as_gnu_mut().unwrap();
    let tb = 1u64 << 40;
    g.sparse[0].offset = base256(tb - 512);
    g.sparse[0]
        .numbytes
        .copy_from_slice(format!("{:011o}\0", 512).as_bytes());
    g.realsize = base256(tb);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[1u8; 512]);
    tar.extend_from_slice(&[0u8; 1024]);
    let err = refused(OCI_LAYER, &tar, None);
    assert!(
        matches!(err, LayerError::FileTooLarge { size, .. } if size == tb),
        "{err}"
    );
}

#[test]
fn truncated_gzip_is_refused() {
    let mut t = RawTar::new();
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    t.file("a", &data).file("b", &data);
    let full = gzip(&t.finish());
    for cut in [full.len() / 3, full.len() - 4, full.len() - 20] {
        let err = refused(OCI_LAYER_GZIP, &full[..cut], None);
        assert!(
            matches!(err, LayerError::Stream { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("re-fetch"), "{err}");
    }
}

#[test]
fn truncated_plain_tar_is_refused() {
    let mut t = RawTar::new();
    t.file("a", &[5u8; 10_000]);
    let full = t.finish();
    let err = refused(OCI_LAYER, &full[..3000], None);
    assert!(matches!(err, LayerError::Stream { .. }), "{err}");
}

#[test]
fn wrong_diff_id_is_refused() {
    let mut t = RawTar::new();
    t.dir("etc/").file("etc/hostname", b"berth\n");
    let tar = t.finish();
    let wrong = sha256(b"something else");
    let err = refused(DOCKER_LAYER_GZIP, &gzip(&tar), Some(&wrong));
    match &err {
        LayerError::DiffIdMismatch { expected, actual } => {
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &sha256(&tar));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("discarded"), "{err}");
}

#[test]
fn unknown_media_type_is_refused() {
    let err = refused("application/vnd.oci.image.layer.v1.tar+lz4", b"", None);
    assert!(matches!(err, LayerError::UnsupportedMediaType(_)), "{err}");
}
