//! `/v1/info` and `/v1/registry`: the daemon, registry users and garbage
//! collection.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Info {
    pub version: String,
    /// The daemon's `--root`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub root: PathBuf,
    /// Images in the local store.
    pub images: u64,
}

/// `POST /v1/registry/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddUser {
    pub name: String,
    pub password: String,
    /// `ACTION:REPOSITORY-GLOB`, e.g. `push:team/*`.
    #[serde(default)]
    pub grants: Vec<String>,
}

/// A registry user as listed: never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub name: String,
    pub grants: Vec<String>,
    /// Unix seconds.
    pub created: u64,
}

/// `POST /v1/registry/gc`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcReport {
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub uploads_expired: u64,
}
