//! Archives that must be refused: a blob that does not match its name, a
//! manifest naming a missing layer, path traversal, truncation, garbage.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod common;

use std::path::Path;
use std::process::Command;

use berth_image::{ImageError, load};
use berth_oci::Digest;
use common::*;

/// Write a tar of `(name, data)` entries with Python's tarfile, which (unlike
/// GNU tar and the Rust tar builders) writes hostile names as given.
fn raw_tar(out: &Path, entries: &[(&str, &[u8])]) {
    let dir = out.with_extension("parts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut script = String::from(
        "import tarfile,sys\nt=tarfile.open(sys.argv[1],'w',format=tarfile.USTAR_FORMAT)\n",
    );
    for (i, (name, data)) in entries.iter().enumerate() {
        let part = dir.join(i.to_string());
        std::fs::write(&part, data).unwrap();
        script.push_str(&format!(
            "i=t.gettarinfo({:?})\ni.name={:?}\ni.uid=i.gid=0\nt.addfile(i, open({:?},'rb'))\n",
            part.display().to_string(),
            name,
            part.display().to_string()
        ));
    }
    script.push_str("t.close()\n");
    run(Command::new("python3").arg("-c").arg(script).arg(out));
}

#[tokio::test]
async fn refuses_a_blob_that_does_not_match_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path()).await;
    let named = Digest::sha256_of(b"what the name says");
    let name = format!("blobs/sha256/{}", named.hex());
    let tar = tmp.path().join("bad.tar");
    raw_tar(&tar, &[("oci-layout", b"{}"), (&name, b"something else")]);
    let err = load(open(&tar).await, &s).await.unwrap_err();
    match &err {
        ImageError::Entry { entry, .. } => assert_eq!(entry, &name),
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains(&name), "{err}");
    assert!(s.list().await.unwrap().is_empty(), "nothing is stored");
}

#[tokio::test]
async fn refuses_a_manifest_naming_a_missing_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path()).await;
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"]}}"#;
    let manifest = br#"[{"Config":"cfg.json","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}]"#;
    let tar = tmp.path().join("missing.tar");
    raw_tar(&tar, &[("manifest.json", manifest), ("cfg.json", config)]);
    let err = load(open(&tar).await, &s).await.unwrap_err();
    match &err {
        ImageError::MissingEntry { entry, .. } => assert_eq!(entry, "abc/layer.tar"),
        other => panic!("unexpected {other}"),
    }

    // An OCI index naming a manifest that is not there.
    let d = Digest::sha256_of(b"nope");
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":4}}]}}"#
    );
    let tar = tmp.path().join("missing-oci.tar");
    raw_tar(
        &tar,
        &[("oci-layout", b"{}"), ("index.json", index.as_bytes())],
    );
    let err = load(open(&tar).await, &s).await.unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
}

#[tokio::test]
async fn refuses_path_traversal() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path()).await;
    for name in ["../x", "blobs/../../x", "/etc/x"] {
        let tar = tmp.path().join("evil.tar");
        raw_tar(&tar, &[(name, b"pwned"), ("index.json", b"{}")]);
        let err = load(open(&tar).await, &s).await.unwrap_err();
        assert!(
            matches!(err, ImageError::UnsafePath { .. }),
            "{name}: {err}"
        );
    }
    assert!(!tmp.path().join("x").exists());
    assert!(s.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn refuses_truncated_and_non_image_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = fixture(tmp.path());
    let tar = tmp.path().join("layout.tar");
    tar_dir(&layout, &tar, false);
    let bytes = std::fs::read(&tar).unwrap();
    // Cutting off only the end-of-archive blocks loses nothing and is
    // accepted (as GNU tar does); a cut on an entry boundary loses entries,
    // which the reference checks then miss. Cuts inside an entry:
    for cut in [bytes.len() / 2, bytes.len() / 3, 700] {
        let short = tmp.path().join("short.tar");
        std::fs::write(&short, &bytes[..cut]).unwrap();
        let s = store(&tmp.path().join(format!("s{cut}"))).await;
        let err = load(open(&short).await, &s).await.unwrap_err();
        eprintln!("cut at {cut}: {err}");
    }
    // A gzip'd archive cut short.
    let tgz = tmp.path().join("layout.tgz");
    tar_dir(&layout, &tgz, true);
    let gz = std::fs::read(&tgz).unwrap();
    let short = tmp.path().join("short.tgz");
    std::fs::write(&short, &gz[..gz.len() / 2]).unwrap();
    let s = store(&tmp.path().join("sgz")).await;
    let err = load(open(&short).await, &s).await.unwrap_err();
    eprintln!("gzip cut: {err}");

    let s = store(&tmp.path().join("other")).await;
    let tar = tmp.path().join("plain.tar");
    raw_tar(&tar, &[("hello.txt", b"hi")]);
    assert!(matches!(
        load(open(&tar).await, &s).await.unwrap_err(),
        ImageError::NotAnImageArchive
    ));
}
