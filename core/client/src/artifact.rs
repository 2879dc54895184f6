//! Single-blob artifacts: a Wasm component pushed as an OCI artifact (config
//! plus one `application/wasm` layer) and pulled back pinned by digest.
//! Plugins are small and must be whole in memory to be compiled, so the
//! component travels as bytes, bounded by the caller's limit.

use std::collections::HashMap;
use std::sync::Arc;

use berth_oci::{Digest, ManifestSummary, media_types};
use bytes::Bytes;

use crate::error::{BoxError, ClientError};
use crate::transfer::{BlobSource, BoxReader, NoProgress, Progress};
use crate::transport::{RegistryClient, Repository};

/// A component fetched from a registry.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest's digest (what a reference should be pinned to).
    pub manifest: Digest,
    pub artifact_type: Option<String>,
    /// The layer's digest.
    pub layer: Digest,
    pub bytes: Bytes,
}

struct MemorySource(HashMap<Digest, Bytes>);

impl BlobSource for MemorySource {
    async fn open(&self, digest: &Digest) -> Result<(BoxReader, u64), BoxError> {
        let bytes = self
            .0
            .get(digest)
            .cloned()
            .ok_or_else(|| format!("blob {digest} is not part of this artifact"))?;
        let size = bytes.len() as u64;
        Ok((Box::new(std::io::Cursor::new(bytes)), size))
    }
}

impl RegistryClient {
    /// Pushes `component` as a Wasm artifact to `repo` under `tag`; returns
    /// the manifest digest.
    pub async fn push_wasm_artifact(
        &self,
        repo: &Repository,
        tag: &str,
        component: Bytes,
    ) -> Result<Digest, ClientError> {
        let config = Bytes::from_static(b"{}");
        let config_digest = Digest::sha256_of(&config);
        let layer_digest = Digest::sha256_of(&component);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "artifactType": media_types::BERTH_PLUGIN,
            "config": {
                "mediaType": media_types::WASM_CONFIG,
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": media_types::WASM_LAYER,
                "digest": layer_digest.to_string(),
                "size": component.len(),
            }],
        });
        let manifest = Bytes::from(manifest.to_string());
        let source = MemorySource(HashMap::from([
            (config_digest.clone(), config),
            (layer_digest.clone(), component),
        ]));
        let progress: Arc<dyn Progress> = Arc::new(NoProgress);
        for digest in [&config_digest, &layer_digest] {
            self.push_blob(repo, digest, &source, None, &progress)
                .await?;
        }
        self.put_manifest(repo, tag, media_types::OCI_MANIFEST, manifest)
            .await
    }

    /// Pulls the Wasm artifact `reference` (a tag or digest) from `repo`:
    /// its one `application/wasm` layer, verified, at most `limit` bytes.
    pub async fn pull_wasm_artifact(
        &self,
        repo: &Repository,
        reference: &str,
        limit: u64,
    ) -> Result<Artifact, ClientError> {
        let manifest = self.get_manifest(repo, reference).await?;
        let bad = |detail: String| ClientError::BadResponse {
            registry: repo.registry.clone(),
            operation: format!(
                "fetching plugin {}/{}@{reference}",
                repo.registry, repo.name
            ),
            detail,
        };
        let summary = ManifestSummary::parse(Some(&manifest.media_type), &manifest.bytes)
            .map_err(|e| bad(e.to_string()))?;
        let layer = summary
            .layers
            .iter()
            .find(|l| l.media_type == media_types::WASM_LAYER)
            .ok_or_else(|| {
                bad(format!(
                    "it is not a Wasm artifact: no layer of type {}; push one with `berth plugin push`",
                    media_types::WASM_LAYER
                ))
            })?;
        if layer.size > limit {
            return Err(bad(format!(
                "its component has {} bytes, more than the limit of {limit}",
                layer.size
            )));
        }
        let mut out = Vec::with_capacity(layer.size as usize);
        self.get_blob(repo, &layer.digest, Some(layer.size), &mut out)
            .await?;
        Ok(Artifact {
            manifest: manifest.digest,
            artifact_type: summary.artifact_type,
            layer: layer.digest.clone(),
            bytes: Bytes::from(out),
        })
    }
}
