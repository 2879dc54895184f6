//! `berth save`: write images from the content store as an OCI image layout
//! tar or a `docker save` tar, streaming every blob from the store into the
//! tar writer.
//!
//! The docker format is the one Docker 25+ writes without its OCI half:
//! `manifest.json` and `repositories` at the top, the config at
//! `blobs/sha256/HEX` and each layer **uncompressed** at
//! `blobs/sha256/DIFFID`. Uncompressed layers are what every `docker load`
//! (old and new) and skopeo accept, and what Docker itself saves. A
//! compressed layer is decompressed twice: once to learn its size for the
//! tar header (and check its diff ID), once to write it; both passes stream,
//! so memory stays flat and nothing is staged on disk.

use std::collections::{BTreeMap, HashSet};

use berth_content::{ContentError, ContentStore};
use berth_oci::{Descriptor, Digest, ManifestSummary, Reference, media_types};
use serde::Serialize;
use tokio::io::{AsyncWrite, BufReader};
use tokio_tar::{Builder, EntryType, Header};

use crate::config::{CONFIG_LIMIT, ImageConfig};
use crate::load::{DockerEntry, read_manifest, sniff_blob};
use crate::stream::{Compression, decode, digest_of};
use crate::{ImageError, annotations};

/// Which archive format [`save`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout: `oci-layout`, `index.json`, `blobs/ALG/HEX`.
    /// Manifests and blobs are written byte for byte, so digests survive.
    Oci,
    /// A `docker save` archive with uncompressed layers (see the module docs).
    Docker,
}

/// Write `images` (each a reference and the digest of its image manifest)
/// to `writer` as one archive. Returns the writer, flushed, so the caller
/// can fsync and rename it into place.
pub async fn save<W>(
    store: &ContentStore,
    images: &[(Reference, Digest)],
    format: ArchiveFormat,
    writer: W,
) -> Result<W, ImageError>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut tar = Builder::new(writer);
    match format {
        ArchiveFormat::Oci => save_oci(store, images, &mut tar).await?,
        ArchiveFormat::Docker => save_docker(store, images, &mut tar).await?,
    }
    let mut w = tar.into_inner().await.map_err(ImageError::Write)?;
    tokio::io::AsyncWriteExt::flush(&mut w)
        .await
        .map_err(ImageError::Write)?;
    Ok(w)
}

async fn image_manifest(
    store: &ContentStore,
    digest: &Digest,
) -> Result<ManifestSummary, ImageError> {
    let summary = read_manifest(store, digest, None, "the image to save").await?;
    if summary.is_index() || summary.config.is_none() {
        return Err(ImageError::UnsupportedMediaType {
            digest: digest.clone(),
            media_type: summary.media_type,
            action: "save (save a platform's image manifest, not an index)",
        });
    }
    Ok(summary)
}

async fn save_oci<W: AsyncWrite + Unpin + Send + 'static>(
    store: &ContentStore,
    images: &[(Reference, Digest)],
    tar: &mut Builder<W>,
) -> Result<(), ImageError> {
    append_bytes(tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).await?;
    append_dir(tar, "blobs/").await?;
    let mut dirs = HashSet::new();
    let mut written = HashSet::new();
    let mut manifests = Vec::new();
    for (reference, digest) in images {
        let summary = image_manifest(store, digest).await?;
        let blobs = std::iter::once(digest).chain(summary.blob_refs().map(|d| &d.digest));
        for blob in blobs {
            if !written.insert(blob.clone()) {
                continue;
            }
            let alg = blob.algorithm().as_str();
            if dirs.insert(alg) {
                append_dir(tar, &format!("blobs/{alg}/")).await?;
            }
            append_blob(store, tar, blob, &blob_path(blob), digest).await?;
        }
        let size = store.stat(digest).await?.unwrap_or_default();
        let mut ann = BTreeMap::new();
        ann.insert(
            annotations::CONTAINERD_NAME.to_string(),
            reference.to_string(),
        );
        if let Some(tag) = &reference.tag {
            ann.insert(annotations::REF_NAME.to_string(), tag.clone());
        }
        manifests.push(Descriptor {
            annotations: Some(ann),
            ..crate::load::descriptor(&summary.media_type, digest.clone(), size)
        });
    }
    let index = OciIndexOut {
        schema_version: 2,
        media_type: media_types::OCI_INDEX,
        manifests,
    };
    let body = serde_json::to_vec(&index).map_err(ImageError::json("index.json"))?;
    append_bytes(tar, "index.json", &body).await
}

async fn save_docker<W: AsyncWrite + Unpin + Send + 'static>(
    store: &ContentStore,
    images: &[(Reference, Digest)],
    tar: &mut Builder<W>,
) -> Result<(), ImageError> {
    append_dir(tar, "blobs/").await?;
    append_dir(tar, "blobs/sha256/").await?;
    let mut written = HashSet::new();
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (reference, digest) in images {
        let summary = image_manifest(store, digest).await?;
        let Some(config) = &summary.config else {
            continue; // image_manifest refused these already
        };
        let cfg_bytes = store.read_small(&config.digest, CONFIG_LIMIT).await?;
        let cfg = ImageConfig::parse(&cfg_bytes, &format!("image config {}", config.digest))?;
        if cfg.rootfs.diff_ids.len() != summary.layers.len() {
            return Err(ImageError::LayerCount {
                config: config.digest.clone(),
                layers: summary.layers.len(),
                diff_ids: cfg.rootfs.diff_ids.len(),
            });
        }
        let config_path = blob_path(&config.digest);
        if written.insert(config_path.clone()) {
            append_bytes(tar, &config_path, &cfg_bytes).await?;
        }
        let mut layer_paths = Vec::with_capacity(summary.layers.len());
        for (layer, diff_id) in summary.layers.iter().zip(&cfg.rootfs.diff_ids) {
            let path = blob_path(diff_id);
            if written.insert(path.clone()) {
                append_uncompressed_layer(store, tar, layer, diff_id, &path, digest).await?;
            }
            layer_paths.push(path);
        }
        let familiar = familiar(reference);
        if let Some(tag) = &reference.tag {
            repositories
                .entry(familiar.clone())
                .or_default()
                .insert(tag.clone(), config.digest.hex().to_string());
        }
        entries.push(DockerEntry {
            config: config_path,
            repo_tags: Some(match &reference.tag {
                Some(tag) => vec![format!("{familiar}:{tag}")],
                None => Vec::new(),
            }),
            layers: layer_paths,
        });
    }
    let manifest = serde_json::to_vec(&entries).map_err(ImageError::json("manifest.json"))?;
    append_bytes(tar, "manifest.json", &manifest).await?;
    let repos = serde_json::to_vec(&repositories).map_err(ImageError::json("repositories"))?;
    append_bytes(tar, "repositories", &repos).await
}

/// Write `layer` uncompressed as `path`, checking it against `diff_id`.
async fn append_uncompressed_layer<W: AsyncWrite + Unpin + Send + 'static>(
    store: &ContentStore,
    tar: &mut Builder<W>,
    layer: &Descriptor,
    diff_id: &Digest,
    path: &str,
    manifest: &Digest,
) -> Result<(), ImageError> {
    let kind = match Compression::of_media_type(&layer.media_type) {
        Some(k) => k,
        None => sniff_blob(store, &layer.digest).await?,
    };
    if kind == Compression::None {
        if &layer.digest != diff_id {
            return Err(ImageError::DiffIdMismatch {
                layer: layer.digest.clone(),
                expected: diff_id.clone(),
                actual: layer.digest.clone(),
            });
        }
        return append_blob(store, tar, &layer.digest, path, manifest).await;
    }
    let open = || async {
        let (f, _) = open_for(store, &layer.digest, manifest).await?;
        Ok::<_, ImageError>(decode(BufReader::new(f), kind))
    };
    let (actual, size) = digest_of(open().await?)
        .await
        .map_err(ImageError::io("decompress", store.blob_path(&layer.digest)))?;
    if &actual != diff_id {
        return Err(ImageError::DiffIdMismatch {
            layer: layer.digest.clone(),
            expected: diff_id.clone(),
            actual,
        });
    }
    tracing::debug!(layer = %layer.digest, %diff_id, size, "writing layer uncompressed");
    let mut header = file_header(size);
    tar.append_data(&mut header, path, open().await?)
        .await
        .map_err(ImageError::Write)
}

async fn open_for(
    store: &ContentStore,
    digest: &Digest,
    manifest: &Digest,
) -> Result<(tokio::fs::File, u64), ImageError> {
    store.open_blob(digest).await.map_err(|e| match e {
        ContentError::NotFound(d) => ImageError::MissingBlob {
            digest: d,
            referenced_by: format!("manifest {manifest}"),
        },
        e => e.into(),
    })
}

async fn append_blob<W: AsyncWrite + Unpin + Send + 'static>(
    store: &ContentStore,
    tar: &mut Builder<W>,
    digest: &Digest,
    path: &str,
    manifest: &Digest,
) -> Result<(), ImageError> {
    let (f, size) = open_for(store, digest, manifest).await?;
    let mut header = file_header(size);
    tar.append_data(&mut header, path, f)
        .await
        .map_err(ImageError::Write)
}

async fn append_bytes<W: AsyncWrite + Unpin + Send + 'static>(
    tar: &mut Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), ImageError> {
    let mut header = file_header(data.len() as u64);
    tar.append_data(&mut header, path, data)
        .await
        .map_err(ImageError::Write)
}

async fn append_dir<W: AsyncWrite + Unpin + Send + 'static>(
    tar: &mut Builder<W>,
    path: &str,
) -> Result<(), ImageError> {
    let mut header = Header::new_ustar();
    header.set_entry_type(EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_mtime(0);
    tar.append_data(&mut header, path, tokio::io::empty())
        .await
        .map_err(ImageError::Write)
}

/// Headers carry no host details (owner, time), so equal input makes
/// byte-identical archives.
fn file_header(size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// Docker's short form: `busybox`, `user/app`, `quay.io/org/app`.
fn familiar(r: &Reference) -> String {
    if r.registry == berth_oci::DEFAULT_REGISTRY {
        r.repository
            .strip_prefix("library/")
            .unwrap_or(&r.repository)
            .to_string()
    } else {
        r.name()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciIndexOut {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}
