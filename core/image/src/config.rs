//! The image configuration (OCI `application/vnd.oci.image.config.v1+json`
//! and Docker's `application/vnd.docker.container.image.v1+json`, which share
//! one shape) and chain IDs.
//!
//! Parsing is lenient the way Docker is: unknown fields are ignored and the
//! `null`s Docker writes for empty lists and maps read as empty. Configs are
//! stored byte for byte; these types are for reading them and for writing
//! the configs berth makes itself (import).

use std::collections::BTreeMap;

use berth_oci::Digest;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ImageError;

/// Configs are small; anything bigger is refused rather than buffered.
pub const CONFIG_LIMIT: u64 = 8 * 1024 * 1024;

/// An image configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub architecture: String,
    #[serde(default, deserialize_with = "null_default")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
}

/// What a container of this image runs with unless told otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    /// Keys like `80/tcp`; the values are empty objects in both formats.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// `None` (inherit) and `Some([])` (cleared) differ, so these stay optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

/// Docker's health check; durations are nanoseconds, as Docker writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `[]` inherit, `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    #[serde(default, deserialize_with = "null_default")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The uncompressed layer digests, bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default = "layers")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
}

fn layers() -> String {
    "layers".to_string()
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: layers(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of how the image was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
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

impl ImageConfig {
    /// Parse a config blob. `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, ImageError> {
        serde_json::from_slice(bytes).map_err(ImageError::json(what))
    }

    /// The chain IDs of this image's layers, bottom first.
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.rootfs.diff_ids)
    }
}

/// Chain IDs as the OCI image spec defines them: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln))`. A
/// chain ID names a stack of layers, which is what snapshots are keyed by.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => Digest::sha256_of(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "a test fails loudly on any unexpected error"
    )]
    use super::*;

    fn d(s: &str) -> Digest {
        s.parse().unwrap()
    }

    /// Expected values computed independently with
    /// `printf '%s %s' "$parent" "$diff" | sha256sum`.
    #[test]
    fn chain_ids_match_the_spec() {
        let a = d("sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
        let b = d("sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d");
        let c = d("sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6");
        let ids = chain_ids(&[a.clone(), b, c]);
        assert_eq!(
            ids,
            vec![
                a,
                d("sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676"),
                d("sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106"),
            ]
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn reads_docker_configs_with_nulls() {
        let docker = br#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,"Labels":null,
              "ExposedPorts":{"80/tcp":{}},"Volumes":null,"WorkingDir":"","User":"",
              "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1000000000},
              "StopSignal":"SIGTERM","OnBuild":null,"Image":"sha256:00"},
            "container_config":{"Cmd":null},
            "rootfs":{"type":"layers","diff_ids":["sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"]},
            "history":[{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh","empty_layer":true}]}"#;
        let c = ImageConfig::parse(docker, "config").unwrap();
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(cc.entrypoint, None);
        assert!(cc.labels.is_empty());
        assert!(cc.exposed_ports.contains_key("80/tcp"));
        assert_eq!(
            cc.healthcheck.as_ref().unwrap().interval,
            Some(1_000_000_000)
        );
        assert_eq!(cc.stop_signal, "SIGTERM");
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert!(c.history[0].empty_layer);
        assert_eq!(c.chain_ids(), c.rootfs.diff_ids);
        // OCI minimal config: no config section at all.
        let oci =
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = ImageConfig::parse(oci, "config").unwrap();
        assert_eq!(c.architecture, "arm64");
        assert!(c.config.is_none());
        assert!(ImageConfig::parse(b"{\"rootfs\":{\"diff_ids\":[\"nope\"]}}", "config").is_err());
    }
}
