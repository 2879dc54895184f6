#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! diff then apply reproduces a tree exactly: types, modes, owners, mtimes
//! (to the nanosecond), xattrs including `security.capability`, symlink
//! targets, hard-link identity and device numbers; and the output is
//! deterministic.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_layer::{ApplyOptions, Compression, apply_fresh, diff};
use berth_oci::media_types::{DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD};
use common::{lchown, mknod, set_mtime, set_xattr, sha256, snapshot};
use rustix::fs::FileType;

/// A v2 `security.capability` value granting cap_net_bind_service (bit 10),
/// effective: the kernel checks the format, so it must be well formed.
fn net_bind_cap() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    v.extend_from_slice(&(1u32 << 10).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

fn build_tree(root: &Path) {
    std::fs::create_dir(root).unwrap();
    let p = |s: &str| root.join(s);
    std::fs::create_dir_all(p("usr/bin")).unwrap();
    std::fs::create_dir_all(p("etc/ssl")).unwrap();
    let long_dir = "a".repeat(90) + "/" + &"b".repeat(90) + "/" + &"c".repeat(120);
    std::fs::create_dir_all(p(&long_dir)).unwrap();
    std::fs::write(p(&format!("{long_dir}/{}", "f".repeat(200))), b"long").unwrap();
    std::fs::write(p("usr/bin/tool"), vec![0x7fu8; 300_000]).unwrap();
    std::fs::set_permissions(p("usr/bin/tool"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::write(p("usr/bin/ping"), b"#!/bin/sh\n").unwrap();
    lchown(&p("usr/bin/ping"), 0, 0);
    std::fs::set_permissions(p("usr/bin/ping"), std::fs::Permissions::from_mode(0o755)).unwrap();
    set_xattr(&p("usr/bin/ping"), "security.capability", &net_bind_cap());
    set_xattr(&p("usr/bin/ping"), "user.note", b"\x00binary\xffvalue");
    std::fs::write(p("etc/hostname"), b"berth\n").unwrap();
    lchown(&p("etc/hostname"), 1000, 2000);
    std::fs::set_permissions(p("etc/hostname"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::hard_link(p("etc/hostname"), p("etc/ssl/hostname-link")).unwrap();
    std::fs::hard_link(p("etc/hostname"), p("usr/hostname-link2")).unwrap();
    std::os::unix::fs::symlink("../usr/bin/tool", p("etc/tool")).unwrap();
    std::os::unix::fs::symlink("/".to_string() + &"t".repeat(150), p("etc/long-target")).unwrap();
    lchown(&p("etc/tool"), 7, 8);
    std::fs::create_dir(p("dev")).unwrap();
    mknod(&p("dev/null"), FileType::CharacterDevice, 0o666, 1, 3);
    mknod(&p("dev/loop9"), FileType::BlockDevice, 0o660, 7, 9);
    mknod(&p("dev/fifo"), FileType::Fifo, 0o600, 0, 0);
    std::fs::create_dir(p("tmp")).unwrap();
    std::fs::set_permissions(p("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    set_xattr(&p("tmp"), "user.dir", b"yes");
    std::fs::write(p("empty"), b"").unwrap();
    // Times last, children before parents, with nanoseconds.
    let mut all: Vec<_> = snapshot(root).into_keys().collect();
    all.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for (i, k) in all.iter().enumerate() {
        set_mtime(
            &root.join(k),
            1_650_000_000 + i as i64,
            123_456_789 * (i as i64 % 3),
        );
    }
}

fn round_trip(compression: Compression, media_type: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    build_tree(&src);

    let mut blob = Vec::new();
    let d = diff(&src, compression, &mut blob).unwrap();
    assert_eq!(d.size, blob.len() as u64);
    assert_eq!(d.digest, sha256(&blob));

    let dst = scratch.path().join("dst");
    let stats = apply_fresh(
        &dst,
        media_type,
        &blob[..],
        Some(&d.diff_id),
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(stats.diff_id, d.diff_id);
    assert_eq!(stats.uncompressed_size, d.uncompressed_size);

    let (a, b) = (snapshot(&src), snapshot(&dst));
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{k} differs");
    }
    let ping = &b["usr/bin/ping"];
    assert_eq!(ping.xattrs["security.capability"], net_bind_cap());
    assert_eq!(
        b["etc/hostname"].inode_group,
        b["etc/ssl/hostname-link"].inode_group
    );
    assert_eq!(b["dev/null"].rdev, rustix::fs::makedev(1, 3));

    // Deterministic: the applied copy diffs to the very same bytes.
    let mut again = Vec::new();
    let d2 = diff(&dst, compression, &mut again).unwrap();
    assert_eq!(d2.diff_id, d.diff_id);
    assert_eq!(d2.digest, d.digest);
}

#[test]
fn round_trip_plain() {
    round_trip(Compression::None, OCI_LAYER);
}

#[test]
fn round_trip_gzip_oci() {
    round_trip(Compression::Gzip, OCI_LAYER_GZIP);
}

#[test]
fn round_trip_gzip_docker() {
    round_trip(Compression::Gzip, DOCKER_LAYER_GZIP);
}

#[test]
fn round_trip_zstd() {
    round_trip(Compression::Zstd, OCI_LAYER_ZSTD);
}

#[test]
fn diff_ids_agree_across_compressions() {
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    build_tree(&src);
    let ids: Vec<_> = [Compression::None, Compression::Gzip, Compression::Zstd]
        .into_iter()
        .map(|c| {
            let mut out = Vec::new();
            let d = diff(&src, c, &mut out).unwrap();
            assert_eq!(d.media_type, c.oci_media_type());
            d.diff_id
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn upper_dir_round_trip_keeps_whiteouts_and_opaque_dirs() {
    let scratch = tempfile::tempdir().unwrap();
    let upper = scratch.path().join("upper");
    std::fs::create_dir_all(upper.join("etc/conf.d")).unwrap();
    std::fs::write(upper.join("etc/conf.d/new.conf"), b"x=1\n").unwrap();
    set_xattr(&upper.join("etc/conf.d"), "trusted.overlay.opaque", b"y");
    // Overlay bookkeeping that must not leak into the layer.
    set_xattr(
        &upper.join("etc"),
        "trusted.overlay.origin",
        b"\x00\xfb\x21",
    );
    mknod(
        &upper.join("etc/removed"),
        FileType::CharacterDevice,
        0,
        0,
        0,
    );
    mknod(&upper.join("gone"), FileType::CharacterDevice, 0, 0, 0);
    // Overlay may share one whiteout inode: it must not become a hard link.
    std::fs::hard_link(upper.join("gone"), upper.join("etc/also-gone")).unwrap();
    for k in snapshot(&upper).into_keys() {
        set_mtime(&upper.join(k), 1_700_000_000, 5);
    }

    let mut blob = Vec::new();
    let d = diff(&upper, Compression::Gzip, &mut blob).unwrap();

    // The layer says it the OCI way.
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        names.push((
            String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            e.header().entry_type(),
        ));
    }
    let plain: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        plain,
        [
            "etc/",
            "etc/.wh.also-gone",
            "etc/conf.d/",
            "etc/conf.d/.wh..wh..opq",
            "etc/conf.d/new.conf",
            "etc/.wh.removed",
            ".wh.gone"
        ]
    );
    assert!(names.iter().all(|(_, t)| *t != tar::EntryType::Link));

    let dst = scratch.path().join("dst");
    apply_fresh(
        &dst,
        OCI_LAYER_GZIP,
        &blob[..],
        Some(&d.diff_id),
        &ApplyOptions::default(),
    )
    .unwrap();
    let (mut a, b) = (snapshot(&upper), snapshot(&dst));
    a.get_mut("etc").unwrap().xattrs.clear();
    for (k, v) in a.iter_mut() {
        // Whiteouts are separate inodes after apply.
        let got = &b[k];
        v.inode_group = got.inode_group;
    }
    assert_eq!(a, b);
}
