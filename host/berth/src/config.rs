//! `berth.toml`, the daemon's configuration file.

use std::path::Path;

use anyhow::Context;
use berth_auth::Mode;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub registry: RegistrySection,
    pub client: ClientSection,
    /// `[[plugin]]` entries: Wasm plugins loaded at start-up.
    pub plugin: Vec<berth_plugins::PluginSpec>,
    pub control: ControlSection,
    pub scan: ScanSection,
    pub containers: ContainersSection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanSection {
    /// Scan every image manifest pushed to the registry with the scanner
    /// plugins (reports at `/v1/scans/DIGEST`).
    pub on_push: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSection {
    /// Serve the control API on this TCP address too, behind the auth
    /// providers (`--control-listen` wins).
    pub listen: Option<String>,
}

/// Defaults for containers that do not set their own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainersSection {
    /// Docker's json-file `max-size` (e.g. `10m`); unset: logs never rotate.
    pub log_max_size: Option<String>,
    /// Docker's json-file `max-file`: files kept, the current one included.
    pub log_max_file: Option<u32>,
}

impl ContainersSection {
    /// As `--log-opt` values.
    pub fn log_opts(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(s) = &self.log_max_size {
            v.push(format!("max-size={s}"));
        }
        if let Some(n) = self.log_max_file {
            v.push(format!("max-file={n}"));
        }
        v
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySection {
    /// `none`, `basic` or `token`.
    pub auth: Mode,
    pub anonymous_pull: bool,
    pub token_ttl_secs: u64,
    /// The token service name (the `service` of challenges and tokens).
    pub service: String,
    /// The token endpoint URL to advertise; by default `http://LISTEN/token`.
    pub realm: Option<String>,
    pub gc_grace_secs: u64,
    pub upload_expiry_secs: u64,
    /// The storage-backend plugin (by name) that keeps the blobs; the local
    /// content store becomes a verified cache in front of it.
    pub storage: Option<String>,
}

impl Default for RegistrySection {
    fn default() -> Self {
        RegistrySection {
            auth: Mode::None,
            anonymous_pull: false,
            token_ttl_secs: 300,
            service: "berth".to_string(),
            realm: None,
            gc_grace_secs: 600,
            upload_expiry_secs: 24 * 3600,
            storage: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSection {
    /// Registries (`host[:port]`) pulled from and pushed to over plain HTTP.
    pub insecure_registries: Vec<String>,
}

impl Config {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}
