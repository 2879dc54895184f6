#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! dir-storage as a BlobBackend, pkg-inventory as a Scanner.

mod common;

use std::io::Read;
use std::os::unix::fs::symlink;

use berth_content::BackendError;
use berth_oci::Digest;
use berth_plugin_artifacts as artifacts;
use berth_plugins::{Access, DirGrant, Kind, PluginError};
use berth_scan::{ImageInfo, RootView, Severity};
use common::*;

#[test]
fn dir_storage_writes_blobs_into_the_granted_dir() {
    let m = manager();
    let data = tempfile::tempdir().unwrap();
    load(
        &m,
        "dir-storage",
        Kind::StorageBackend,
        artifacts::DIR_STORAGE,
        |s| {
            s.config = serde_json::json!({ "root": "/data" });
            s.grants.dirs.push(DirGrant {
                host: data.path().to_path_buf(),
                guest: "/data".into(),
                access: Access::Rw,
            });
        },
    );
    let backend = m.storage_backend("dir-storage").unwrap();

    let blob = vec![42u8; 3 * 1024 * 1024 + 17];
    let digest = Digest::sha256_of(&blob);
    assert_eq!(backend.stat(&digest).unwrap(), None);
    let mut writer = backend.begin_write(&digest, blob.len() as u64).unwrap();
    for chunk in blob.chunks(1 << 20) {
        writer.write(chunk).unwrap();
    }
    writer.commit(blob.len() as u64).unwrap();

    let on_disk = data.path().join("blobs/sha256").join(digest.hex());
    assert_eq!(
        std::fs::read(&on_disk).unwrap(),
        blob,
        "blob at blobs/sha256/HEX"
    );
    assert_eq!(backend.stat(&digest).unwrap(), Some(blob.len() as u64));
    let part = backend.read(&digest, 1 << 20, 100).unwrap();
    assert_eq!(part, &blob[1 << 20..(1 << 20) + 100]);
    let listed = backend.list(None, 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, digest);

    // An aborted write leaves nothing visible.
    let other = Digest::sha256_of(b"never committed");
    let mut writer = backend.begin_write(&other, 16).unwrap();
    writer.write(b"never committed").unwrap();
    writer.abort();
    assert_eq!(backend.stat(&other).unwrap(), None);
    // So does a writer dropped without commit.
    let mut writer = backend.begin_write(&other, 16).unwrap();
    writer.write(b"never").unwrap();
    drop(writer);
    assert_eq!(backend.stat(&other).unwrap(), None);

    assert!(backend.delete(&digest).unwrap());
    assert!(!on_disk.exists());
    assert!(!backend.delete(&digest).unwrap());
    assert!(matches!(
        backend.read(&digest, 0, 10),
        Err(BackendError::NotFound(_))
    ));

    // Disabled: calls fail as unavailable, they do not hang or panic.
    m.disable("dir-storage").unwrap();
    assert!(matches!(
        backend.stat(&digest),
        Err(BackendError::Unavailable(_))
    ));
}

#[test]
fn storage_backend_of_a_hook_is_the_wrong_kind() {
    let m = manager();
    load(
        &m,
        "deny-root",
        Kind::LifecycleHook,
        artifacts::DENY_ROOT,
        |_| {},
    );
    assert!(matches!(
        m.storage_backend("deny-root"),
        Err(PluginError::WrongKind { .. })
    ));
}

const DPKG_STATUS: &str = "\
Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1
";

#[test]
fn pkg_inventory_lists_dpkg_packages_and_busybox() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("rootfs");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), DPKG_STATUS).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
    )
    .unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    // A hostile link: the scanner must not see the host's own dpkg database.
    symlink("../../../../../../var/lib/dpkg", root.join("hostdpkg")).unwrap();

    let m = manager();
    load(
        &m,
        "pkg-inventory",
        Kind::Scanner,
        artifacts::PKG_INVENTORY,
        |_| {},
    );
    let view = RootView::open(&root).unwrap();
    let image = ImageInfo {
        reference: "localhost:5000/app:1".into(),
        digest: "sha256:0000".into(),
        config_json: "{}".into(),
    };
    let reports = m.scan(&image, &view);
    assert_eq!(reports.len(), 1);
    let findings = reports[0].result.as_ref().unwrap();
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert!(ids.contains(&"Debian/libc6"), "{ids:?}");
    assert!(ids.contains(&"Debian/zlib1g"), "{ids:?}");
    assert!(!ids.iter().any(|i| i.contains("removed-thing")), "{ids:?}");
    let libc = findings.iter().find(|f| f.id == "Debian/libc6").unwrap();
    assert_eq!(libc.installed_version, "2.36-9+deb12u4");
    assert_eq!(libc.severity, Severity::None);
    assert_eq!(libc.path, "/var/lib/dpkg/status");
    let busybox = findings.iter().find(|f| f.package == "busybox").unwrap();
    let mut version = String::new();
    std::process::Command::new("/bin/busybox")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut version)
        .unwrap();
    assert!(
        version.contains(&busybox.installed_version),
        "busybox {} not in {:?}",
        busybox.installed_version,
        version.lines().next()
    );
    // Exactly the image's packages: 2 from dpkg plus busybox.
    assert_eq!(findings.len(), 3, "{ids:?}");
}

#[test]
fn pkg_inventory_on_an_empty_image_finds_nothing() {
    let root = tempfile::tempdir().unwrap();
    let m = manager();
    load(
        &m,
        "pkg-inventory",
        Kind::Scanner,
        artifacts::PKG_INVENTORY,
        |_| {},
    );
    let view = RootView::open(root.path()).unwrap();
    let findings = m
        .scanner("pkg-inventory")
        .unwrap()
        .scan_image(&ImageInfo::default(), &view)
        .unwrap();
    assert!(findings.is_empty(), "{findings:?}");
}
