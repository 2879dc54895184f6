//! Import of a real busybox root filesystem, checked with sha256sum, gzip
//! and skopeo.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use berth_image::{
    ArchiveFormat, ContainerConfig, ImageConfig, ImportOptions, apply_change, import, save,
};
use berth_oci::{Reference, media_types};
use common::*;

/// `/bin/busybox` and its applet links, tarred with GNU tar.
fn busybox_rootfs(tmp: &Path) -> std::path::PathBuf {
    let root = tmp.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = run(Command::new("/bin/busybox").arg("--list"));
    for applet in list.lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let tar = tmp.join("rootfs.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
        .arg("-C")
        .arg(&root)
        .arg("."));
    tar
}

#[tokio::test]
async fn imports_a_busybox_rootfs() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = busybox_rootfs(tmp.path());
    let diff_id = sha256_file(&tar);
    run(Command::new("gzip").arg("-k").arg(&tar));
    let tgz = tmp.path().join("rootfs.tar.gz");
    let s = store(tmp.path()).await;

    let mut config = ContainerConfig::default();
    apply_change(&mut config, r#"CMD ["/bin/sh"]"#).unwrap();
    apply_change(&mut config, "ENV PATH=/bin").unwrap();
    let options = ImportOptions {
        config,
        created: Some(UNIX_EPOCH + Duration::from_secs(946_684_800)),
        message: Some("from busybox-static".to_string()),
        ..ImportOptions::default()
    };
    let reference: Reference = "busybox-import:1".parse().unwrap();
    let img = import(open(&tgz).await, &s, Some(&reference), options.clone())
        .await
        .unwrap();
    assert_eq!(
        img.reference.as_deref(),
        Some("docker.io/library/busybox-import:1")
    );
    assert_eq!(img.media_type, media_types::OCI_MANIFEST);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.layers[0].media_type, media_types::OCI_LAYER_GZIP);

    let cfg = ImageConfig::parse(&s.read_small(&img.config, 1 << 20).await.unwrap(), "c").unwrap();
    assert_eq!(cfg.rootfs.diff_ids, vec![diff_id.clone()]);
    assert_eq!(cfg.os, "linux");
    assert_eq!(cfg.created.as_deref(), Some("2000-01-01T00:00:00Z"));
    assert_eq!(cfg.history[0].created_by.as_deref(), Some("berth import"));
    let cc = cfg.config.as_ref().unwrap();
    assert_eq!(cc.cmd.as_deref(), Some(&["/bin/sh".to_string()][..]));

    // The stored layer is gzip whose content is exactly the input tar.
    let layer = s.blob_path(&img.layers[0].digest);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc {} | sha256sum", layer.display()))
        .output()
        .unwrap();
    assert_eq!(
        format!("sha256:{}", &String::from_utf8_lossy(&out.stdout)[..64]),
        diff_id.to_string()
    );

    // Same input uncompressed, same options: the same image, byte for byte.
    let again = import(open(&tar).await, &s, Some(&reference), options)
        .await
        .unwrap();
    assert_eq!(again.config, img.config, "config");
    assert_eq!(again.layers, img.layers, "layers");
    assert_eq!(again.manifest, img.manifest);

    // skopeo accepts config and manifest.
    let saved = tmp.path().join("imported.tar");
    let f = tokio::fs::File::create(&saved).await.unwrap();
    save(
        &s,
        &[(reference, img.manifest.clone())],
        ArchiveFormat::Oci,
        f,
    )
    .await
    .unwrap();
    let path = format!("oci-archive:{}", saved.display());
    let inspect = skopeo(&["inspect", &path]);
    assert_eq!(inspect["Digest"], img.manifest.to_string());
    assert_eq!(inspect["Layers"][0], img.layers[0].digest.to_string());
    let skopeo_cfg = skopeo(&["inspect", "--config", &path]);
    assert_eq!(skopeo_cfg["config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    // And skopeo can copy it into a docker archive (it reads every blob).
    let docker = tmp.path().join("imported-docker.tar");
    skopeo(&[
        "copy",
        "-q",
        &path,
        &format!("docker-archive:{}:busybox:x", docker.display()),
    ]);
}

#[tokio::test]
async fn import_of_garbage_gzip_fails_and_leaves_no_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path()).await;
    // gzip magic, then nonsense.
    let bad: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8];
    let err = import(bad, &s, None, ImportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, berth_image::ImageError::Source(_)), "{err}");
    assert!(s.ingest_ids().await.unwrap().is_empty());
    assert!(s.list().await.unwrap().is_empty());
}
