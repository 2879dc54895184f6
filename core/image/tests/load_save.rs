//! Load and save against real archives: the make-image.sh fixture, GNU tar,
//! and skopeo as an independent reader and writer of both formats.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod common;

use berth_image::{ArchiveFormat, ImageConfig, load, load_dir, media, save};
use berth_oci::{Digest, Reference, media_types};
use common::*;

#[tokio::test]
async fn loads_an_oci_layout_tar_plain_gzip_and_unpacked() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, manifest) = fixture(tmp.path());
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    for gzip in [false, true] {
        let tar = tmp.path().join(format!("layout-{gzip}.tar"));
        tar_dir(&layout, &tar, gzip);
        let s = store(&tmp.path().join(format!("s{gzip}"))).await;
        let images = load(open(&tar).await, &s).await.unwrap();
        assert_eq!(images.len(), 1, "{index}");
        let img = &images[0];
        assert_eq!(img.manifest, manifest);
        assert_eq!(img.ref_name.as_deref(), Some("latest"));
        assert_eq!(img.reference, None, "a bare tag is not a reference");
        assert_eq!(img.media_type, media_types::OCI_MANIFEST);
        assert_eq!(img.layers.len(), 3);
        // Every blob of the layout is in the store, byte for byte.
        for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let p = entry.unwrap().path();
            let d = format!("sha256:{}", p.file_name().unwrap().to_str().unwrap());
            let stored = s.blob_path(&d.parse().unwrap());
            assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(stored).unwrap());
        }
    }
    let s = store(&tmp.path().join("dir")).await;
    let images = load_dir(&layout, &s).await.unwrap();
    assert_eq!(images[0].manifest, manifest);
}

#[tokio::test]
async fn oci_save_load_round_trip_keeps_the_manifest_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, manifest) = fixture(tmp.path());
    let s1 = store(&tmp.path().join("s1")).await;
    let img = load_dir(&layout, &s1).await.unwrap().remove(0);
    let out = tmp.path().join("saved.tar");
    let reference: Reference = "localhost:5000/fixture/busybox:v1".parse().unwrap();
    let f = tokio::fs::File::create(&out).await.unwrap();
    save(
        &s1,
        &[(reference, img.manifest.clone())],
        ArchiveFormat::Oci,
        f,
    )
    .await
    .unwrap();

    let s2 = store(&tmp.path().join("s2")).await;
    let back = load(open(&out).await, &s2).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].manifest, manifest);
    assert_eq!(back[0].config, img.config);
    assert_eq!(back[0].layers, img.layers);
    assert_eq!(
        back[0].reference.as_deref(),
        Some("localhost:5000/fixture/busybox:v1")
    );
    assert_eq!(back[0].ref_name.as_deref(), Some("v1"));

    // skopeo reads it, and sees the same manifest.
    let path = format!("oci-archive:{}", out.display());
    let inspect = skopeo(&["inspect", &path]);
    assert_eq!(inspect["Digest"], manifest.to_string());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    // GNU tar reads it too.
    let listing = run(std::process::Command::new("tar").arg("-tf").arg(&out));
    assert!(listing.lines().any(|l| l == "index.json"), "{listing}");
}

#[tokio::test]
async fn docker_save_load_round_trip_keeps_config_and_diff_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = fixture(tmp.path());
    let s1 = store(&tmp.path().join("s1")).await;
    let img = load_dir(&layout, &s1).await.unwrap().remove(0);
    let cfg =
        ImageConfig::parse(&s1.read_small(&img.config, 1 << 20).await.unwrap(), "cfg").unwrap();
    let out = tmp.path().join("docker.tar");
    let f = tokio::fs::File::create(&out).await.unwrap();
    let reference: Reference = "busybox:1".parse().unwrap();
    save(
        &s1,
        &[(reference, img.manifest.clone())],
        ArchiveFormat::Docker,
        f,
    )
    .await
    .unwrap();

    // skopeo reads the docker archive and sees the same config.
    let path = format!("docker-archive:{}", out.display());
    let skopeo_cfg = skopeo(&["inspect", "--config", &path]);
    let diff_ids: Vec<String> = cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        skopeo_cfg["rootfs"]["diff_ids"],
        serde_json::json!(diff_ids)
    );
    let inspect = skopeo(&["inspect", &path]);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    // skopeo does not report RepoTags of archives: read manifest.json.
    let m = run(std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&out)
        .arg("manifest.json"));
    let m: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["busybox:1"]), "{m}");

    let s2 = store(&tmp.path().join("s2")).await;
    let back = load(open(&out).await, &s2).await.unwrap();
    assert_eq!(back.len(), 1);
    let b = &back[0];
    assert_eq!(b.reference.as_deref(), Some("docker.io/library/busybox:1"));
    assert_eq!(b.config, img.config);
    assert_eq!(b.media_type, media_types::DOCKER_MANIFEST);
    let layer_digests: Vec<_> = b.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(
        layer_digests, cfg.rootfs.diff_ids,
        "docker-save layers are uncompressed"
    );
    assert!(b.layers.iter().all(|l| l.media_type == media::DOCKER_LAYER));
    // Loading the same archive twice gives the same manifest.
    let again = load(open(&out).await, &s2).await.unwrap();
    assert_eq!(again[0].manifest, b.manifest);
}

#[tokio::test]
async fn loads_archives_written_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, manifest) = fixture(tmp.path());
    let s = store(tmp.path()).await;
    let src = format!("oci:{}:latest", layout.display());
    let cfg_digest = load_dir(&layout, &s).await.unwrap()[0].config.clone();

    let docker = tmp.path().join("skopeo-docker.tar");
    skopeo(&[
        "copy",
        "-q",
        &src,
        &format!("docker-archive:{}:busybox:tag", docker.display()),
    ]);
    let images = load(open(&docker).await, &s).await.unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(
        images[0].reference.as_deref(),
        Some("docker.io/library/busybox:tag")
    );
    let cfg = ImageConfig::parse(
        &s.read_small(&images[0].config, 1 << 20).await.unwrap(),
        "c",
    )
    .unwrap();
    assert_eq!(cfg.rootfs.diff_ids.len(), 3);

    let oci = tmp.path().join("skopeo-oci.tar");
    skopeo(&[
        "copy",
        "-q",
        &src,
        &format!("oci-archive:{}:example.com/busybox:v2", oci.display()),
    ]);
    let images = load(open(&oci).await, &s).await.unwrap();
    assert_eq!(
        images[0].manifest, manifest,
        "oci to oci keeps the manifest"
    );
    assert_eq!(images[0].config, cfg_digest);
    assert_eq!(
        images[0].reference.as_deref(),
        Some("example.com/busybox:v2")
    );
}

/// The pre-25 docker save layout: `ID/layer.tar` (one a symlink to another,
/// as Docker writes shared layers), `ID/json`, `ID/VERSION`, `HEX.json`.
#[tokio::test]
async fn loads_legacy_docker_save_with_symlinked_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("hello"), "hi\n").unwrap();
    let dir = tmp.path().join("archive");
    std::fs::create_dir_all(dir.join("aaa")).unwrap();
    std::fs::create_dir_all(dir.join("bbb")).unwrap();
    tar_dir(&content, &dir.join("aaa/layer.tar"), false);
    std::os::unix::fs::symlink("../aaa/layer.tar", dir.join("bbb/layer.tar")).unwrap();
    for id in ["aaa", "bbb"] {
        std::fs::write(dir.join(id).join("json"), "{}").unwrap();
        std::fs::write(dir.join(id).join("VERSION"), "1.0").unwrap();
    }
    let diff = sha256_file(&dir.join("aaa/layer.tar"));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}","{diff}"]}}}}"#
    );
    let cfg_name = format!("{}.json", Digest::sha256_of(config.as_bytes()).hex());
    std::fs::write(dir.join(&cfg_name), &config).unwrap();
    let manifest = format!(
        r#"[{{"Config":"{cfg_name}","RepoTags":["legacy:1","quay.io/x/legacy:2"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}]"#
    );
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    std::fs::write(dir.join("repositories"), r#"{"legacy":{"1":"bbb"}}"#).unwrap();
    let tar = tmp.path().join("legacy.tar");
    tar_dir(&dir, &tar, false);

    let s = store(tmp.path()).await;
    let images = load(open(&tar).await, &s).await.unwrap();
    let refs: Vec<_> = images
        .iter()
        .map(|i| i.reference.clone().unwrap())
        .collect();
    assert_eq!(refs, ["docker.io/library/legacy:1", "quay.io/x/legacy:2"]);
    assert_eq!(images[0].manifest, images[1].manifest);
    assert_eq!(images[0].config, Digest::sha256_of(config.as_bytes()));
    assert_eq!(images[0].layers.len(), 2);
    assert!(images[0].layers.iter().all(|l| l.digest == diff));
    // The unpacked directory loads the same.
    let from_dir = load_dir(&dir, &s).await.unwrap();
    assert_eq!(from_dir[0].manifest, images[0].manifest);
}
