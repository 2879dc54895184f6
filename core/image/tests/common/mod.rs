//! Shared helpers: fixture images from scripts/make-image.sh, tar, skopeo.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_content::ContentStore;
use berth_oci::Digest;

pub async fn store(dir: &Path) -> ContentStore {
    ContentStore::open(dir.join("content")).await.unwrap()
}

/// Run a command, failing the test with its stderr if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A deterministic 3-layer busybox OCI layout; returns it and its manifest digest.
pub fn fixture(tmp: &Path) -> (PathBuf, Digest) {
    let layout = tmp.join("layout");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-image.sh");
    run(Command::new("bash").arg(script).arg(&layout));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (layout, digest)
}

/// `tar -cf OUT -C DIR .` (with `-z` when `gzip`).
pub fn tar_dir(dir: &Path, out: &Path, gzip: bool) {
    let mut cmd = Command::new("tar");
    cmd.arg(if gzip { "-czf" } else { "-cf" })
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".");
    run(&mut cmd);
}

pub fn skopeo(args: &[&str]) -> serde_json::Value {
    let out = run(Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args));
    if out.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&out).unwrap()
    }
}

pub fn sha256_file(p: &Path) -> Digest {
    let out = run(Command::new("sha256sum").arg(p));
    format!("sha256:{}", &out[..64]).parse().unwrap()
}

pub async fn open(p: &Path) -> tokio::fs::File {
    tokio::fs::File::open(p).await.unwrap()
}
