//! Whole images: `pull_image` (manifest, platform choice in an index,
//! config and layers into a [`BlobSink`]) and `push_image` (blobs from a
//! [`BlobSource`], then manifests, children before their index), moving
//! up to `config.concurrency` blobs at once.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncReadExt;

use berth_oci::{Descriptor, Digest, ManifestSummary, Reference};

use crate::blobs::VerifyingReader;
use crate::error::ClientError;
use crate::manifests::Manifest;
use crate::platform::Platform;
use crate::transfer::{BlobOutcome, BlobSink, BlobSource, BoxReader, Progress};
use crate::transport::{RegistryClient, Repository};

/// Manifests larger than this are not read from a source.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// What a pull fetched.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// Digest of what the reference names (the index, for multi-platform
    /// images): the digest to record for `name@digest`.
    pub digest: Digest,
    /// The index the reference named, if it named one.
    pub index: Option<Manifest>,
    /// The image manifest for the chosen platform.
    pub manifest: Manifest,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// What a pull will fetch, learnt from the manifests alone: see
/// [`RegistryClient::plan_pull`].
#[derive(Debug, Clone)]
pub struct PullPlan {
    /// The repository the manifests came from, where the blobs are.
    pub repository: Repository,
    /// Digest of what the reference names (the index, for multi-platform
    /// images).
    pub digest: Digest,
    /// The index the reference named, if it named one.
    pub index: Option<Manifest>,
    /// The image manifest for the chosen platform.
    pub manifest: Manifest,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// Every blob to fetch (config and layers), each once.
    blobs: Vec<Descriptor>,
}

/// What a push sent.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// Digest of the top-level manifest pushed.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Every blob and how it got there.
    pub blobs: Vec<(Digest, BlobOutcome)>,
}

impl RegistryClient {
    /// Pull the image `reference` names for `platform` into `sink`: blobs
    /// first, then the manifest and (if any) index, so a manifest in the
    /// sink always means its blobs are there. [`plan_pull`](Self::plan_pull)
    /// then [`fetch_pull`](Self::fetch_pull).
    pub async fn pull_image<K: BlobSink>(
        &self,
        reference: &Reference,
        platform: &Platform,
        sink: &K,
        progress: Arc<dyn Progress>,
    ) -> Result<PulledImage, ClientError> {
        let plan = self.plan_pull(reference, platform).await?;
        self.fetch_pull(&plan, sink, progress).await
    }

    /// What pulling `reference` for `platform` would fetch: one GET of the
    /// top-level manifest and, for an index, one of the platform's
    /// manifest. Callers that must act before the layers arrive (read the
    /// config, start unpacking) plan first, then [`fetch_pull`](Self::fetch_pull)
    /// the plan; the plan pins the top-level digest, so both see the same
    /// image even if the tag moves meanwhile.
    pub async fn plan_pull(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<PullPlan, ClientError> {
        let repo = Repository::of(reference);
        let top = self.get_manifest(&repo, &reference.object()).await?;
        let top_summary = summarise(&repo, &reference.object(), &top)?;
        let (index, manifest, summary) = if top_summary.is_index() {
            let entry = platform.choose(&top_summary.manifests).ok_or_else(|| {
                ClientError::NoMatchingPlatform {
                    reference: reference.to_string(),
                    platform: platform.to_string(),
                    available: top_summary
                        .manifests
                        .iter()
                        .map(Platform::describe)
                        .collect(),
                }
            })?;
            let child = self.get_manifest(&repo, &entry.digest.to_string()).await?;
            let summary = summarise(&repo, &entry.digest.to_string(), &child)?;
            if summary.is_index() {
                return Err(ClientError::BadResponse {
                    registry: repo.registry.clone(),
                    operation: format!("pulling {reference}"),
                    detail: format!(
                        "index entry {} for {platform} is itself an index",
                        entry.digest
                    ),
                });
            }
            (Some(top), child, summary)
        } else {
            (None, top, top_summary)
        };
        let config = summary
            .config
            .clone()
            .ok_or_else(|| ClientError::BadResponse {
                registry: repo.registry.clone(),
                operation: format!("pulling {reference}"),
                detail: "the image manifest has no config".into(),
            })?;
        let mut seen = HashSet::new();
        let blobs: Vec<Descriptor> = summary
            .blob_refs()
            .filter(|d| seen.insert(d.digest.clone()))
            .cloned()
            .collect();
        Ok(PullPlan {
            repository: repo,
            digest: index.as_ref().map_or(&manifest, |i| i).digest.clone(),
            index,
            manifest,
            config,
            layers: summary.layers,
            blobs,
        })
    }

    /// Fetch what `plan` names into `sink`: its blobs (those the sink
    /// lacks), concurrently, then its manifest and index. No manifest is
    /// fetched again.
    pub async fn fetch_pull<K: BlobSink>(
        &self,
        plan: &PullPlan,
        sink: &K,
        progress: Arc<dyn Progress>,
    ) -> Result<PulledImage, ClientError> {
        let repo = &plan.repository;
        // Owned descriptors: a closure over `&Descriptor` makes the future
        // unprovably Send (rust-lang/rust#102211), and callers spawn it.
        futures::stream::iter(plan.blobs.iter().cloned().map(|d| {
            let progress = &progress;
            async move {
                self.pull_blob(repo, &d.digest, d.size, sink, progress)
                    .await
            }
        }))
        .buffer_unordered(self.config.concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await?;
        store_manifest(sink, &plan.manifest).await?;
        if let Some(i) = &plan.index {
            store_manifest(sink, i).await?;
        }
        Ok(PulledImage {
            digest: plan.digest.clone(),
            index: plan.index.clone(),
            manifest: plan.manifest.clone(),
            config: plan.config.clone(),
            layers: plan.layers.clone(),
        })
    }

    /// Push the image whose top-level manifest (or index) is
    /// `manifest_digest` in `source` to `reference` (its tag, or its
    /// digest if it has no tag). Blobs the registry has are skipped; with
    /// `mount_from`, missing blobs are first mounted from that repository.
    pub async fn push_image<S: BlobSource>(
        &self,
        reference: &Reference,
        manifest_digest: &Digest,
        source: &S,
        mount_from: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<PushedImage, ClientError> {
        let repo = Repository::of(reference);
        if let Some(d) = &reference.digest
            && d != manifest_digest
        {
            return Err(ClientError::BadRegistry {
                registry: repo.registry.clone(),
                detail: format!(
                    "{reference} names {d}, but the image to push is {manifest_digest}"
                ),
            });
        }
        let top = read_manifest(source, manifest_digest).await?;
        let summary = summarise(&repo, &manifest_digest.to_string(), &top)?;
        let mut blobs = Vec::new();
        if summary.is_index() {
            for child in &summary.manifests {
                let m = read_manifest(source, &child.digest).await?;
                let s = summarise(&repo, &child.digest.to_string(), &m)?;
                blobs.extend(
                    self.push_blobs(&repo, &s, source, mount_from, &progress)
                        .await?,
                );
                self.put_manifest(
                    &repo,
                    &child.digest.to_string(),
                    &m.media_type,
                    m.bytes.clone(),
                )
                .await?;
            }
        } else {
            blobs = self
                .push_blobs(&repo, &summary, source, mount_from, &progress)
                .await?;
        }
        let target = reference
            .tag
            .clone()
            .unwrap_or_else(|| manifest_digest.to_string());
        let size = top.bytes.len() as u64;
        self.put_manifest(&repo, &target, &top.media_type, top.bytes)
            .await?;
        tracing::info!(%reference, digest = %manifest_digest, blobs = blobs.len(), "pushed image");
        Ok(PushedImage {
            digest: manifest_digest.clone(),
            media_type: top.media_type,
            size,
            blobs,
        })
    }

    async fn push_blobs<S: BlobSource>(
        &self,
        repo: &Repository,
        summary: &ManifestSummary,
        source: &S,
        mount_from: Option<&str>,
        progress: &Arc<dyn Progress>,
    ) -> Result<Vec<(Digest, BlobOutcome)>, ClientError> {
        let mut seen = HashSet::new();
        let wanted: Vec<Digest> = summary
            .blob_refs()
            .map(|d| d.digest.clone())
            .filter(|d| seen.insert(d.clone()))
            .collect();
        futures::stream::iter(wanted.into_iter().map(|d| async move {
            let outcome = self
                .push_blob(repo, &d, source, mount_from, progress)
                .await?;
            Ok::<_, ClientError>((d, outcome))
        }))
        .buffer_unordered(self.config.concurrency.max(1))
        .try_collect()
        .await
    }
}

fn summarise(
    repo: &Repository,
    reference: &str,
    m: &Manifest,
) -> Result<ManifestSummary, ClientError> {
    ManifestSummary::parse(Some(&m.media_type), &m.bytes).map_err(|source| ClientError::Manifest {
        registry: repo.registry.clone(),
        repository: repo.name.clone(),
        reference: reference.to_string(),
        source,
    })
}

/// Read a (small) manifest from a source, checking its digest.
async fn read_manifest<S: BlobSource>(
    source: &S,
    digest: &Digest,
) -> Result<Manifest, ClientError> {
    let src_err = |e: std::io::Error| ClientError::Source {
        digest: digest.clone(),
        source: Box::new(e),
    };
    let (reader, size) = source
        .open(digest)
        .await
        .map_err(|source| ClientError::Source {
            digest: digest.clone(),
            source,
        })?;
    if size > MAX_MANIFEST {
        return Err(src_err(std::io::Error::other(format!(
            "manifest is {size} bytes, more than the {MAX_MANIFEST} registries accept"
        ))));
    }
    let (mut verified, _) = VerifyingReader::new(reader, digest.clone(), Some(size));
    let mut buf = Vec::with_capacity(size as usize);
    verified.read_to_end(&mut buf).await.map_err(src_err)?;
    let bytes = Bytes::from(buf);
    let media_type = ManifestSummary::parse(None, &bytes)
        .map_err(|e| src_err(std::io::Error::other(e)))?
        .media_type;
    Ok(Manifest {
        media_type,
        digest: digest.clone(),
        bytes,
    })
}

async fn store_manifest<K: BlobSink>(sink: &K, m: &Manifest) -> Result<(), ClientError> {
    if sink.has(&m.digest).await {
        return Ok(());
    }
    let reader: BoxReader = Box::new(std::io::Cursor::new(m.bytes.clone()));
    sink.write(&m.digest, m.bytes.len() as u64, reader)
        .await
        .map_err(|source| ClientError::Sink {
            digest: m.digest.clone(),
            source,
        })
}
