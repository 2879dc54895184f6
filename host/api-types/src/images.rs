//! `/v1/images`: the local image store, pull, push, tag, inspect, history,
//! mount, prune, save, load, import and scan.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Registry credentials for one pull or push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Auth {
    pub username: String,
    pub password: String,
}

/// `POST /v1/images/pull`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullRequest {
    /// `[registry/]repository[:tag|@digest]`.
    pub reference: String,
    /// `os/arch[/variant]`; the daemon's platform if absent.
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// `POST /v1/images/push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushRequest {
    pub reference: String,
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// The result of a push (the `done` event's `result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    pub reference: String,
    /// The manifest's digest.
    pub digest: String,
    pub size: u64,
}

/// `POST /v1/images/tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TagRequest {
    pub source: String,
    pub target: String,
}

/// `?reference=`: the image an image verb acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct RefQuery {
    /// `[registry/]repository[:tag|@digest]`.
    pub reference: String,
}

/// `POST /v1/images/mount`: mount an image's root file system read-only
/// on an empty directory root owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MountRequest {
    pub reference: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub target: PathBuf,
}

/// `POST /v1/images/unmount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmountRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub target: PathBuf,
}

/// An image in the local store (`GET /v1/images`, and the answer of pull,
/// tag, remove, load and import).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    /// Full reference, e.g. `127.0.0.1:5000/app:1`.
    pub reference: String,
    /// The manifest's digest.
    pub manifest: String,
    pub media_type: String,
    /// The config's digest (the image ID).
    pub config: String,
    /// Sum of the config and layer sizes.
    pub size: u64,
    /// Blobs this image keeps alive: manifest, config, layers.
    pub refs: Vec<String>,
    /// Unix seconds.
    pub created: u64,
    /// The reference it was pulled from.
    #[serde(default)]
    pub origin: Option<String>,
    /// Chain ID of the top layer once unpacked.
    #[serde(default)]
    pub chain_id: Option<String>,
}

/// `GET /v1/images/inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInspect {
    pub reference: String,
    pub manifest: String,
    pub media_type: String,
    pub config_digest: String,
    pub chain_id: Option<String>,
    pub size: u64,
    pub created: u64,
    pub origin: Option<String>,
    /// The OCI image config.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: serde_json::Value,
}

/// One entry of `GET /v1/images/history` (the image config's `history`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// `POST /v1/images/prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImagePruneResponse {
    pub snapshots_removed: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
}

/// `GET /v1/images/save`: the images to write as one tar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct SaveQuery {
    /// Repeatable: `?reference=a&reference=b`.
    pub reference: Vec<String>,
    /// `oci` (the default) or `docker`.
    pub format: Option<String>,
}

/// `POST /v1/images/load`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct LoadQuery {
    /// Names the loaded image when the archive names none.
    pub name: Option<String>,
}

/// `POST /v1/images/import`: a root file system tar becomes an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ImportQuery {
    /// `NAME[:TAG]` of the new image.
    pub reference: String,
    /// Repeatable Dockerfile-style config changes, e.g. `CMD ["sh"]`.
    pub change: Vec<String>,
    /// The history comment.
    pub message: Option<String>,
}

/// `POST /v1/images/scan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanRequest {
    pub reference: String,
}

/// What every scanner found in an image (`POST /v1/images/scan`, and
/// `GET /v1/scans/{digest}` with `repository` set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanResponse {
    pub reference: String,
    /// The manifest's digest.
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub reports: Vec<ScanReport>,
}

/// One scanner's answer: its findings, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanReport {
    pub scanner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One thing a scanner found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    /// `package`, `vulnerability`, or another kind the scanner defines.
    pub kind: String,
    pub id: String,
    pub package: String,
    pub ecosystem: String,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    /// `unknown`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    pub title: String,
    pub path: String,
}
