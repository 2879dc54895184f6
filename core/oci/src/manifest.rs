//! The parts of a manifest the distribution protocol must understand: which
//! blobs and manifests it references, its subject, and its artifact type.
//!
//! Manifests are stored byte for byte; this module only reads them, and is
//! lenient about fields it does not need (OCI and Docker schema 2 alike).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media_types;

/// A content descriptor as OCI and Docker schema 2 define it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON for {media_type}: {source}")]
    Json {
        media_type: String,
        source: serde_json::Error,
    },
    #[error(
        "manifest media type {0:?} is not supported: push an OCI image manifest or index, or a Docker schema 2 manifest or list"
    )]
    UnsupportedMediaType(String),
    #[error(
        "manifest says mediaType {body:?} but was sent as {header:?}: send it with Content-Type {body:?}"
    )]
    MediaTypeMismatch { header: String, body: String },
    #[error("manifest has schemaVersion {0}; only schemaVersion 2 is supported")]
    SchemaVersion(i64),
    #[error("manifest of type {0} lacks its {1} field")]
    MissingField(String, &'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// What the registry needs to know of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestSummary {
    /// The effective media type: the body's `mediaType`, else the header's,
    /// else inferred from the shape.
    pub media_type: String,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ManifestSummary {
    /// Parse `body`, sent with `content_type` (if any), checking that it is a
    /// schema 2 manifest or index of a type berth serves.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ManifestError> {
        let header = content_type
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| !c.is_empty());
        let json_err = |source| ManifestError::Json {
            media_type: header.clone().unwrap_or_else(|| "manifest".to_string()),
            source,
        };
        let raw: Raw = serde_json::from_slice(body).map_err(json_err)?;
        if let Some(v) = raw.schema_version
            && v != 2
        {
            return Err(ManifestError::SchemaVersion(v));
        }
        let media_type = match (&raw.media_type, &header) {
            (Some(b), Some(h)) if b != h && media_types::is_manifest(h) => {
                return Err(ManifestError::MediaTypeMismatch {
                    header: h.clone(),
                    body: b.clone(),
                });
            }
            (Some(b), _) => b.clone(),
            (None, Some(h)) if media_types::is_manifest(h) => h.clone(),
            (None, _) if raw.manifests.is_some() => media_types::OCI_INDEX.to_string(),
            (None, _) if raw.config.is_some() => media_types::OCI_MANIFEST.to_string(),
            (None, Some(h)) => return Err(ManifestError::UnsupportedMediaType(h.clone())),
            (None, None) => {
                return Err(ManifestError::UnsupportedMediaType("(none)".to_string()));
            }
        };
        if !media_types::is_manifest(&media_type) {
            return Err(ManifestError::UnsupportedMediaType(media_type));
        }
        if raw.schema_version.is_none() {
            return Err(ManifestError::MissingField(media_type, "schemaVersion"));
        }
        let is_index = media_types::is_index(&media_type);
        if is_index && raw.manifests.is_none() {
            return Err(ManifestError::MissingField(media_type, "manifests"));
        }
        if !is_index && raw.config.is_none() {
            return Err(ManifestError::MissingField(media_type, "config"));
        }
        let artifact_type = raw.artifact_type.clone().or_else(|| {
            raw.config
                .as_ref()
                .map(|c| c.media_type.clone())
                .filter(|_| !is_index)
        });
        Ok(ManifestSummary {
            media_type,
            config: raw.config,
            layers: raw.layers.unwrap_or_default(),
            manifests: raw.manifests.unwrap_or_default(),
            subject: raw.subject,
            artifact_type,
            annotations: raw.annotations,
        })
    }

    /// Blobs this manifest needs present: its config and layers (not
    /// foreign layers with `urls`, which live elsewhere by design).
    pub fn blob_refs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(
            self.layers
                .iter()
                .filter(|l| l.urls.as_ref().is_none_or(|u| u.is_empty())),
        )
    }

    /// Whether this is an index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        media_types::is_index(&self.media_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CFG}","size":0}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{CFG}","size":0}}]{extra}}}"#
        )
    }

    #[test]
    fn reads_an_oci_manifest() {
        let m =
            ManifestSummary::parse(Some(media_types::OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(m.blob_refs().count(), 2);
        assert_eq!(m.artifact_type.as_deref(), Some(media_types::OCI_CONFIG));
        assert!(!m.is_index());
    }

    #[test]
    fn refuses_mismatch_and_garbage() {
        assert!(matches!(
            ManifestSummary::parse(Some(media_types::OCI_INDEX), image("").as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(ManifestSummary::parse(None, b"{not json").is_err());
        assert!(ManifestSummary::parse(None, br#"{"schemaVersion":1}"#).is_err());
        let bad_digest = image("").replace(CFG, "sha256:zz");
        assert!(ManifestSummary::parse(None, bad_digest.as_bytes()).is_err());
    }

    #[test]
    fn reads_subject() {
        let subj = format!(
            r#","subject":{{"mediaType":"{}","digest":"{CFG}","size":1}}"#,
            media_types::OCI_MANIFEST
        );
        let m = ManifestSummary::parse(None, image(&subj).as_bytes()).unwrap();
        assert_eq!(m.subject.unwrap().size, 1);
    }
}
