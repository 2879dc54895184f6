//! `berth load`: read an OCI image layout or a `docker save` archive (a tar,
//! optionally gzip'd or zstd'd, or an unpacked layout directory) into the
//! content store.
//!
//! One streaming pass: tar entries come in any order (blobs first is
//! common, `index.json` may come last), so every blob is streamed into the
//! store as it arrives and the small JSON files are kept until the end,
//! when they are parsed and checked against what was stored. Archive paths
//! are only ever used as map keys, never as file system paths.
//!
//! What the pass keeps until the end is bounded, as an archive is
//! untrusted input: each path and link target by `PATH_MAX`, all of them
//! together by [`MAX_NAME_BYTES`], the entries by [`MAX_ENTRIES`] (each
//! entry's headers are bounded in [`crate::headers`]).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use berth_content::{ContentError, ContentStore};
use berth_layer::path::shown;
use berth_oci::{Descriptor, Digest, ManifestSummary, Reference, media_types};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::{CONFIG_LIMIT, ImageConfig};
use crate::headers::{HEADER_LIMIT, HeaderGauge, Metered};
use crate::paths::{normalize, resolve_link};
use crate::platform::Platform;
use crate::stream::{Compression, HashReader, decode_sniffed};
use crate::{ImageError, annotations, media};

/// index.json, manifest.json and manifests are small; refuse monsters.
const META_LIMIT: u64 = 16 * 1024 * 1024;
/// How many symlinks deep a lookup follows before giving up on a loop.
const MAX_LINK_HOPS: usize = 16;
/// Entries of one archive, directories included. An image archive holds a
/// few per image and per layer (a `docker save` of a hundred images of
/// twenty layers, some four thousand); past this one is not an image
/// archive, and its bookkeeping would grow without end.
const MAX_ENTRIES: u64 = 1 << 16;
/// Bytes of the entry paths and link targets kept until the archive ends
/// (real ones are some 100 bytes each); with [`MAX_ENTRIES`], what a pass
/// holds stays within some tens of megabytes whatever the archive.
const MAX_NAME_BYTES: u64 = 16 << 20;

/// One image that `load` or `import` put into the store.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedImage {
    /// The normalised full reference (`docker.io/library/busybox:latest`)
    /// if the archive named one.
    pub reference: Option<String>,
    /// The name as the archive gave it: an OCI `org.opencontainers.image.ref.name`
    /// (often a bare tag such as `latest`) or a Docker `RepoTags` entry.
    pub ref_name: Option<String>,
    pub manifest: Digest,
    pub media_type: String,
    pub config: Digest,
    pub layers: Vec<Descriptor>,
    /// Sum of the config and layer sizes, as image records count it.
    pub size: u64,
}

/// Load every image in a tar archive (plain, gzip or zstd) read from `src`.
pub async fn load<R>(src: R, store: &ContentStore) -> Result<Vec<LoadedImage>, ImageError>
where
    R: AsyncRead + Send + 'static,
{
    let decoded = decode_sniffed(src).await.map_err(ImageError::Archive)?;
    let gauge = HeaderGauge::new(HEADER_LIMIT);
    let mut archive = tokio_tar::Archive::new(Metered::new(decoded, gauge.clone()));
    let mut entries = archive.entries().map_err(ImageError::Archive)?;
    let mut c = Collected::default();
    let mut last = String::new();
    let archive_err = |source, last: &str| {
        if gauge.exceeded() {
            ImageError::HeaderTooLarge {
                at: if last.is_empty() {
                    "the first entry".to_string()
                } else {
                    format!("the entry after {last:?}")
                },
                limit: gauge.limit(),
            }
        } else {
            ImageError::Archive(source)
        }
    };
    loop {
        // Between entries the tar reader reads the next one's headers,
        // PAX records and GNU long names whole: those bytes are bounded.
        gauge.headers(true);
        let next = entries.next().await;
        gauge.headers(false);
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(|e| archive_err(e, &last))?;
        c.count_entry()?;
        let raw = entry.path_bytes().into_owned();
        let path = normalize(&raw)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().unwrap_or_default();
            // Symlink targets are relative to the link's directory, hard
            // link targets to the archive root.
            let base = if kind.is_symlink() {
                path.rsplit_once('/').map_or("", |(dir, _)| dir)
            } else {
                ""
            };
            let target = resolve_link(base, &target, &raw)?;
            c.add_link(path, target)?;
        } else if kind.is_file() || kind == tokio_tar::EntryType::Continuous {
            let size = entry.header().size().map_err(ImageError::Archive)?;
            c.add_file(store, path, size, &mut entry).await?;
        }
        // Directories, devices and the like carry nothing an image needs;
        // what was not read is data, not the next entry's headers.
        tokio::io::copy(&mut entry, &mut tokio::io::sink())
            .await
            .map_err(ImageError::Archive)?;
        last = shown(&raw);
    }
    c.finish(store).await
}

/// Load every image in an unpacked OCI image layout (or docker save) directory.
pub async fn load_dir(dir: &Path, store: &ContentStore) -> Result<Vec<LoadedImage>, ImageError> {
    let mut c = Collected::default();
    let mut todo = vec![String::new()];
    while let Some(rel) = todo.pop() {
        let abs = dir.join(&rel);
        let mut rd = tokio::fs::read_dir(&abs)
            .await
            .map_err(ImageError::io("list", &abs))?;
        while let Some(e) = rd
            .next_entry()
            .await
            .map_err(ImageError::io("list", &abs))?
        {
            c.count_entry()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = e
                .file_type()
                .await
                .map_err(ImageError::io("stat", e.path()))?;
            if ft.is_dir() {
                todo.push(path);
            } else if ft.is_symlink() {
                let target = tokio::fs::read_link(e.path())
                    .await
                    .map_err(ImageError::io("read link", e.path()))?;
                let target = resolve_link(&rel, target.as_os_str().as_bytes(), path.as_bytes())?;
                c.add_link(path, target)?;
            } else if ft.is_file() {
                let mut f = tokio::fs::File::open(e.path())
                    .await
                    .map_err(ImageError::io("open", e.path()))?;
                let size = f
                    .metadata()
                    .await
                    .map_err(ImageError::io("stat", e.path()))?
                    .len();
                c.add_file(store, path, size, &mut f).await?;
            }
        }
    }
    c.finish(store).await
}

/// What one pass over the archive found.
#[derive(Default)]
struct Collected {
    /// Regular files that were stored, by normalised archive path.
    files: HashMap<String, (Digest, u64)>,
    /// The small metadata files, kept whole.
    meta: HashMap<String, Vec<u8>>,
    /// Links, by normalised path, to normalised targets.
    links: HashMap<String, String>,
    /// Entries seen, against [`MAX_ENTRIES`].
    entries: u64,
    /// Bytes of the paths and targets kept, against [`MAX_NAME_BYTES`].
    name_bytes: u64,
}

impl Collected {
    /// One more entry of the archive.
    fn count_entry(&mut self) -> Result<(), ImageError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(ImageError::TooManyEntries { limit: MAX_ENTRIES });
        }
        Ok(())
    }

    /// `names` more bytes of paths kept until the end.
    fn keep(&mut self, names: usize) -> Result<(), ImageError> {
        self.name_bytes += names as u64;
        if self.name_bytes > MAX_NAME_BYTES {
            return Err(ImageError::NamesTooLarge {
                limit: MAX_NAME_BYTES,
            });
        }
        Ok(())
    }

    fn add_link(&mut self, path: String, target: String) -> Result<(), ImageError> {
        self.keep(path.len() + target.len())?;
        self.links.insert(path, target);
        Ok(())
    }

    async fn add_file<Rd: AsyncRead + Unpin>(
        &mut self,
        store: &ContentStore,
        path: String,
        size: u64,
        src: &mut Rd,
    ) -> Result<(), ImageError> {
        let kind = classify(&path);
        if !matches!(kind, Kind::Skip) {
            self.keep(path.len())?;
        }
        match kind {
            Kind::Meta => {
                if size > META_LIMIT {
                    return Err(ImageError::TooLarge {
                        what: path,
                        limit: META_LIMIT,
                    });
                }
                let mut buf = Vec::with_capacity(size as usize);
                src.take(size)
                    .read_to_end(&mut buf)
                    .await
                    .map_err(ImageError::Archive)?;
                check_len(&path, size, buf.len() as u64)?;
                self.meta.insert(path, buf);
            }
            Kind::Skip => {}
            Kind::Blob(digest) => {
                store.write_blob(&digest, Some(size), src).await.map_err(
                    |source| match source {
                        ContentError::SizeMismatch {
                            expected, actual, ..
                        } if actual < expected => ImageError::Truncated {
                            entry: path.clone(),
                            expected,
                            actual,
                        },
                        source => ImageError::Entry {
                            entry: path.clone(),
                            source,
                        },
                    },
                )?;
                tracing::debug!(entry = %path, %digest, "blob loaded");
                self.files.insert(path, (digest, size));
            }
            Kind::Other => {
                let (digest, n) = store_unnamed(store, &path, src).await?;
                check_len(&path, size, n)?;
                self.files.insert(path, (digest, n));
            }
        }
        Ok(())
    }

    /// The stored file at `path`, following links.
    fn lookup(&self, path: &str) -> Option<&(Digest, u64)> {
        let mut p = normalize(path.as_bytes()).ok()?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(f) = self.files.get(&p) {
                return Some(f);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    async fn finish(self, store: &ContentStore) -> Result<Vec<LoadedImage>, ImageError> {
        // Docker 25+ writes both; the OCI index keeps manifests byte for byte.
        if let Some(index) = self.meta.get("index.json") {
            load_oci(index, store).await
        } else if let Some(manifest) = self.meta.get("manifest.json") {
            self.load_docker(manifest, store).await
        } else {
            Err(ImageError::NotAnImageArchive)
        }
    }

    async fn load_docker(
        &self,
        manifest_json: &[u8],
        store: &ContentStore,
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(manifest_json).map_err(ImageError::json("manifest.json"))?;
        let mut out = Vec::new();
        for e in entries {
            let missing = |entry: &str| ImageError::MissingEntry {
                entry: entry.to_string(),
                referenced_by: "manifest.json".to_string(),
            };
            let (config, config_size) = self
                .lookup(&e.config)
                .ok_or_else(|| missing(&e.config))?
                .clone();
            let bytes = store.read_small(&config, CONFIG_LIMIT).await?;
            let cfg = ImageConfig::parse(&bytes, &format!("image config {}", e.config))?;
            if cfg.rootfs.diff_ids.len() != e.layers.len() {
                return Err(ImageError::LayerCount {
                    config,
                    layers: e.layers.len(),
                    diff_ids: cfg.rootfs.diff_ids.len(),
                });
            }
            let mut layers = Vec::with_capacity(e.layers.len());
            for (path, diff_id) in e.layers.iter().zip(&cfg.rootfs.diff_ids) {
                let (digest, size) = self.lookup(path).ok_or_else(|| missing(path))?.clone();
                let media_type = match sniff_blob(store, &digest).await? {
                    Compression::None => {
                        // Free to check: an uncompressed layer is its diff ID.
                        if &digest != diff_id {
                            return Err(ImageError::DiffIdMismatch {
                                layer: digest.clone(),
                                expected: diff_id.clone(),
                                actual: digest,
                            });
                        }
                        media::DOCKER_LAYER
                    }
                    Compression::Gzip => media_types::DOCKER_LAYER_GZIP,
                    Compression::Zstd => media::DOCKER_LAYER_ZSTD,
                };
                layers.push(descriptor(media_type, digest, size));
            }
            // Docker's own importer (and containerd's) records docker-save
            // images as schema 2 manifests over the layers as they are.
            let manifest = DockerManifest {
                schema_version: 2,
                media_type: media_types::DOCKER_MANIFEST,
                config: descriptor(media_types::DOCKER_CONFIG, config.clone(), config_size),
                layers: layers.clone(),
            };
            let body = serde_json::to_vec(&manifest).map_err(ImageError::json("new manifest"))?;
            let digest = store.put_bytes(&body).await?;
            let size = config_size + layers.iter().map(|l| l.size).sum::<u64>();
            let image = |reference: Option<String>, ref_name: Option<String>| LoadedImage {
                reference,
                ref_name,
                manifest: digest.clone(),
                media_type: media_types::DOCKER_MANIFEST.to_string(),
                config: config.clone(),
                layers: layers.clone(),
                size,
            };
            let tags = e.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                out.push(image(None, None));
            }
            for tag in tags {
                out.push(image(normalize_reference(&tag), Some(tag)));
            }
        }
        Ok(out)
    }
}

enum Kind {
    Meta,
    Skip,
    Blob(Digest),
    Other,
}

fn classify(path: &str) -> Kind {
    match path {
        "index.json" | "manifest.json" | "oci-layout" | "repositories" => return Kind::Meta,
        _ => {}
    }
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["blobs", alg, hex] => match alg.parse().and_then(|a| Digest::new(a, hex)) {
            Ok(d) => Kind::Blob(d),
            Err(e) => {
                tracing::warn!(entry = path, error = %e, "blob name is not a digest berth knows; storing it by its sha256");
                Kind::Other
            }
        },
        // Legacy docker save per-layer metadata: v1 JSON nobody reads now.
        [_, "json" | "VERSION"] => Kind::Skip,
        _ => Kind::Other,
    }
}

fn check_len(entry: &str, expected: u64, actual: u64) -> Result<(), ImageError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ImageError::Truncated {
            entry: entry.to_string(),
            expected,
            actual,
        })
    }
}

/// Store a file whose digest the archive does not tell (docker save's
/// `ID/layer.tar`): hash it while it goes into an ingest, then commit it
/// under the digest that came out.
async fn store_unnamed<Rd: AsyncRead + Unpin>(
    store: &ContentStore,
    path: &str,
    src: &mut Rd,
) -> Result<(Digest, u64), ImageError> {
    let id = format!("load-{}", uuid::Uuid::new_v4().simple());
    let entry_err = |source| ImageError::Entry {
        entry: path.to_string(),
        source,
    };
    let mut ingest = store.ingest(&id).await.map_err(entry_err)?;
    let mut hashed = HashReader::new(src);
    let appended = ingest.append(&mut hashed).await;
    let (digest, n) = hashed.finish();
    let result = match appended {
        Ok(_) => ingest.commit(&digest, Some(n)).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let _ = store.remove_ingest(&id).await;
        return Err(entry_err(e));
    }
    Ok((digest, n))
}

/// How a stored blob is compressed, by its first bytes.
pub(crate) async fn sniff_blob(
    store: &ContentStore,
    digest: &Digest,
) -> Result<Compression, ImageError> {
    let (f, _) = store.open_blob(digest).await?;
    let mut head = Vec::with_capacity(4);
    f.take(4)
        .read_to_end(&mut head)
        .await
        .map_err(ImageError::io("read", store.blob_path(digest)))?;
    Ok(Compression::sniff(&head))
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

async fn load_oci(index: &[u8], store: &ContentStore) -> Result<Vec<LoadedImage>, ImageError> {
    let index: OciIndex = serde_json::from_slice(index).map_err(ImageError::json("index.json"))?;
    let mut out = Vec::new();
    for desc in index.manifests {
        let ann = desc.annotations.clone().unwrap_or_default();
        let ref_name = ann.get(annotations::REF_NAME).cloned();
        let reference = ann
            .get(annotations::CONTAINERD_NAME)
            .and_then(|n| normalize_reference(n))
            .or_else(|| {
                // A ref name may be a whole reference or just a tag.
                ref_name
                    .as_deref()
                    .filter(|n| n.contains([':', '/', '@']))
                    .and_then(normalize_reference)
            });
        let manifest = resolve_platform(store, desc, "index.json").await?;
        let summary = read_manifest(
            store,
            &manifest.digest,
            Some(&manifest.media_type),
            "index.json",
        )
        .await?;
        for blob in summary.blob_refs() {
            if store.stat(&blob.digest).await?.is_none() {
                return Err(ImageError::MissingBlob {
                    digest: blob.digest.clone(),
                    referenced_by: format!("manifest {}", manifest.digest),
                });
            }
        }
        let Some(config) = summary.config else {
            return Err(ImageError::UnsupportedMediaType {
                digest: manifest.digest,
                media_type: summary.media_type,
                action: "load as an image",
            });
        };
        let size = config.size + summary.layers.iter().map(|l| l.size).sum::<u64>();
        out.push(LoadedImage {
            reference,
            ref_name,
            manifest: manifest.digest,
            media_type: summary.media_type,
            config: config.digest,
            layers: summary.layers,
            size,
        });
    }
    Ok(out)
}

/// For an index, the manifest for this host's platform; otherwise `desc`.
async fn resolve_platform(
    store: &ContentStore,
    desc: Descriptor,
    referenced_by: &str,
) -> Result<Descriptor, ImageError> {
    if !media_types::is_index(&desc.media_type) {
        return Ok(desc);
    }
    let index = read_manifest(store, &desc.digest, Some(&desc.media_type), referenced_by).await?;
    let host = Platform::host();
    for child in index.manifests {
        let platform: Option<Platform> = child
            .platform
            .clone()
            .and_then(|p| serde_json::from_value(p).ok());
        if platform.is_some_and(|p| host.runs(&p)) && store.stat(&child.digest).await?.is_some() {
            return Ok(child);
        }
    }
    Err(ImageError::NoPlatform {
        index: desc.digest,
        platform: host.to_string(),
    })
}

pub(crate) async fn read_manifest(
    store: &ContentStore,
    digest: &Digest,
    media_type: Option<&str>,
    referenced_by: &str,
) -> Result<ManifestSummary, ImageError> {
    let body = match store.read_small(digest, META_LIMIT).await {
        Ok(b) => b,
        Err(ContentError::NotFound(_)) => {
            return Err(ImageError::MissingBlob {
                digest: digest.clone(),
                referenced_by: referenced_by.to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    ManifestSummary::parse(media_type, &body).map_err(|source| ImageError::Manifest {
        digest: digest.clone(),
        source,
    })
}

fn normalize_reference(name: &str) -> Option<String> {
    match name.parse::<Reference>() {
        Ok(r) => Some(r.to_string()),
        Err(e) => {
            tracing::warn!(name, error = %e, "archive names an image with an invalid reference; loading it untagged");
            None
        }
    }
}

pub(crate) fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        artifact_type: None,
        annotations: None,
        platform: None,
        urls: None,
    }
}

/// One image of a docker save `manifest.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerEntry {
    pub(crate) config: String,
    #[serde(default)]
    pub(crate) repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) layers: Vec<String>,
}

/// A Docker schema 2 (or OCI) image manifest, for writing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DockerManifest {
    pub(crate) schema_version: u32,
    pub(crate) media_type: &'static str,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
}
