//! Reading and comparing OCI image layouts (`index.json`, `blobs/sha256/…`).

use std::path::{Path, PathBuf};

/// Where a blob with this digest lives in a layout.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    dir.join("blobs").join(alg).join(hex)
}

/// The manifest digest and bytes that `index.json` tags with `tag`.
pub fn manifest_for_tag(dir: &Path, tag: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let index_path = dir.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", index_path.display()))?;
    let manifests = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .ok_or_else(|| anyhow::anyhow!("{} has no manifests", index_path.display()))?;
    let entry = manifests
        .iter()
        .find(|m| {
            m.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(|v| v.as_str())
                == Some(tag)
        })
        .ok_or_else(|| anyhow::anyhow!("{} has no manifest tagged {tag}", index_path.display()))?;
    let digest = entry
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| anyhow::anyhow!("index entry without digest"))?
        .to_string();
    let bytes = std::fs::read(blob_path(dir, &digest))?;
    Ok((digest, bytes))
}

/// The config and layer digests a manifest names, config first.
pub fn manifest_blobs(manifest: &[u8]) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(manifest)?;
    let mut out = Vec::new();
    let config = v
        .pointer("/config/digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| anyhow::anyhow!("manifest has no config digest"))?;
    out.push(config.to_string());
    for layer in v
        .get("layers")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        let d = layer
            .get("digest")
            .and_then(|d| d.as_str())
            .ok_or_else(|| anyhow::anyhow!("layer without digest"))?;
        out.push(d.to_string());
    }
    Ok(out)
}

/// Checks that `copy` holds the same image as `original`: the same manifest digest and every
/// config and layer blob present and hashing to its digest.
pub fn assert_same_image(
    original: &crate::Image,
    copy_dir: &Path,
    copy_tag: &str,
) -> anyhow::Result<()> {
    let (digest, manifest) = manifest_for_tag(copy_dir, copy_tag)?;
    anyhow::ensure!(
        digest == original.manifest_digest,
        "manifest digest changed on the round trip: {} became {digest}",
        original.manifest_digest
    );
    anyhow::ensure!(
        crate::sha256_digest(&manifest) == digest,
        "manifest bytes in {} do not hash to {digest}",
        copy_dir.display()
    );
    let blobs = manifest_blobs(&manifest)?;
    anyhow::ensure!(
        blobs == original.blobs,
        "blob list changed: {:?} became {blobs:?}",
        original.blobs
    );
    for blob in &blobs {
        let path = blob_path(copy_dir, blob);
        let actual = crate::sha256_file(&path)?;
        anyhow::ensure!(actual == *blob, "{} hashes to {actual}", path.display());
    }
    Ok(())
}

/// Every file under `dir` whose name is 64 hex digits and which sits below a directory named
/// `blobs` must hash to its name. Returns how many were checked.
pub fn verify_content_addressed(dir: &Path) -> anyhow::Result<usize> {
    fn walk(dir: &Path, under_blobs: bool, checked: &mut usize) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let ft = entry.file_type()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                walk(&path, under_blobs || name == "blobs", checked)?;
            } else if ft.is_file()
                && under_blobs
                && name.len() == 64
                && name.bytes().all(|b| b.is_ascii_hexdigit())
            {
                let actual = crate::sha256_file(&path)?;
                anyhow::ensure!(
                    actual == format!("sha256:{name}"),
                    "{} is named for its digest but hashes to {actual}",
                    path.display()
                );
                *checked += 1;
            }
        }
        Ok(())
    }
    let mut checked = 0;
    walk(dir, false, &mut checked)?;
    Ok(checked)
}
