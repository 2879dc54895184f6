//! `/v1/volumes`: named volumes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A volume (also the daemon's record of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Volume {
    pub name: String,
    /// The directory on the host that containers mount.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub mountpoint: PathBuf,
    /// Unix seconds.
    pub created: u64,
    /// Made for an image's `VOLUME` path; removed with its container.
    #[serde(default)]
    pub anonymous: bool,
    /// For an anonymous volume, the container whose create made it: if
    /// berthd dies before that container is recorded, start-up finds the
    /// volume by it and removes it with the rest of the create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// `POST /v1/volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreateVolume {
    /// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; a random name if absent.
    pub name: Option<String>,
}

/// `GET /v1/volumes/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeInspect {
    pub volume: Volume,
    /// Names of the containers that mount it.
    pub used_by: Vec<String>,
}

/// `POST /v1/volumes/prune`: the names of the volumes removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumePruneResponse {
    pub removed: Vec<String>,
}
