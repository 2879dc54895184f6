//! Fixture images: OCI layouts built by `scripts/make-image.sh`, cached on disk.
//!
//! The script is deterministic (same arguments, same digests), so a built layout is kept
//! under `target/e2e-fixtures/`, keyed by the script's own hash and the arguments, and
//! shared by every test process; a build goes to a temp directory and is renamed into place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// An OCI image layout on disk with one tagged image.
#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
    pub tag: String,
    /// `sha256:…` of the manifest.
    pub manifest_digest: String,
    /// `sha256:…` of the config then each layer, in manifest order.
    pub blobs: Vec<String>,
}

impl Image {
    /// `oci:DIR:TAG`, for skopeo.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }

    /// Total size in bytes of the config and layers.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs
            .iter()
            .filter_map(|d| crate::layout::blob_path(&self.dir, d).metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// Opens an image from a layout directory.
    pub fn open(dir: &Path, tag: &str) -> anyhow::Result<Image> {
        let (manifest_digest, manifest) = crate::layout::manifest_for_tag(dir, tag)?;
        Ok(Image {
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
            manifest_digest,
            blobs: crate::layout::manifest_blobs(&manifest)?,
        })
    }
}

/// Path of `scripts/make-image.sh`.
pub fn script() -> PathBuf {
    crate::workspace_root().join("scripts/make-image.sh")
}

/// The small 3-layer busybox image (about 1 MiB), variant 0.
pub fn small() -> anyhow::Result<Image> {
    build(&[])
}

/// A variant of the small image: layers 1 and 2 shared with every variant, layer 3 its own.
pub fn variant(n: u32) -> anyhow::Result<Image> {
    build(&["--variant", &n.to_string()])
}

/// The image with `mb` extra megabytes of incompressible data spread over its layers.
pub fn sized(mb: u32) -> anyhow::Result<Image> {
    build(&["--size", &mb.to_string()])
}

/// Builds (or finds cached) `make-image.sh DIR ARGS…`.
pub fn build(args: &[&str]) -> anyhow::Result<Image> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<String>, Image>>> = OnceLock::new();
    let key: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    // Held across the build: two threads asking for the same image build it once.
    let mut guard = cache
        .lock()
        .map_err(|_| anyhow::anyhow!("fixture cache poisoned"))?;
    if let Some(img) = guard.get(&key) {
        return Ok(img.clone());
    }
    let img = build_on_disk(args)?;
    guard.insert(key, img.clone());
    Ok(img)
}

fn build_on_disk(args: &[&str]) -> anyhow::Result<Image> {
    let script = script();
    let script_bytes =
        std::fs::read(&script).map_err(|e| anyhow::anyhow!("reading {}: {e}", script.display()))?;
    let script_hash = crate::sha256_digest(&script_bytes);
    let name = format!(
        "{}{}",
        &script_hash["sha256:".len().."sha256:".len() + 12],
        args.iter()
            .map(|a| format!("_{}", a.trim_start_matches('-')))
            .collect::<String>()
    );
    let base = crate::bins::target_dir().join("e2e-fixtures");
    std::fs::create_dir_all(&base)?;
    let dir = base.join(&name);
    if !dir.join("index.json").is_file() {
        let tmp = tempfile::Builder::new()
            .prefix(".building-")
            .tempdir_in(&base)?;
        let out = tmp.path().join("layout");
        crate::run_ok(Command::new("bash").arg(&script).arg(&out).args(args))?;
        // Another process may have won the race: then its copy, identical, stays.
        if std::fs::rename(&out, &dir).is_err() && !dir.join("index.json").is_file() {
            anyhow::bail!("could not move fixture into {}", dir.display());
        }
    }
    Image::open(&dir, "latest")
}
