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
    pub network: NetworkSection,
    pub images: ImagesSection,
}

/// Bounds on each image layer berthd unpacks (pulled, loaded or imported):
/// a layer is untrusted input, and a small compressed one can expand
/// without end. Unset keys keep the defaults of `berth_unpack::Limits`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesSection {
    /// Bytes of uncompressed tar in one layer.
    pub max_layer_bytes: Option<u64>,
    /// Tar entries in one layer.
    pub max_layer_entries: Option<u64>,
    /// Bytes of tar headers (PAX records, GNU long names) of one entry.
    pub max_header_bytes: Option<u64>,
}

impl ImagesSection {
    pub fn layer_limits(&self) -> berth_unpack::Limits {
        let d = berth_unpack::Limits::default();
        berth_unpack::Limits {
            max_layer_bytes: self.max_layer_bytes.unwrap_or(d.max_layer_bytes),
            max_entries: self.max_layer_entries.unwrap_or(d.max_entries),
            max_header_bytes: self.max_header_bytes.unwrap_or(d.max_header_bytes),
        }
    }
}

/// Where bridge networks live. Daemons side by side on one host each need
/// their own bridge, subnets and name prefixes: at start-up a daemon
/// removes links carrying its prefixes that it has no record of.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSection {
    /// The default `bridge` network's Linux bridge.
    pub bridge: String,
    /// The default network's subnet.
    pub subnet: String,
    /// User-defined networks take the next free /24 from here.
    pub pool: String,
    /// Prefix of user-defined networks' bridges.
    pub bridge_prefix: String,
    /// Prefix of the host ends of containers' veth pairs.
    pub veth_prefix: String,
}

impl Default for NetworkSection {
    fn default() -> Self {
        let d = berth_network::NetworkConfig::default();
        NetworkSection {
            bridge: d.default_bridge,
            subnet: d.default_subnet.to_string(),
            pool: d.pool.to_string(),
            bridge_prefix: d.bridge_prefix,
            veth_prefix: d.veth_prefix,
        }
    }
}

impl NetworkSection {
    /// As the network manager's configuration, checked.
    pub fn to_config(&self) -> anyhow::Result<berth_network::NetworkConfig> {
        let name_ok = |n: &str, max: usize| {
            !n.is_empty()
                && n.len() <= max
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.bridge, 15) {
            anyhow::bail!(
                "[network] bridge = {:?}: a Linux interface name is 1 to 15 letters, digits, - or _",
                self.bridge
            );
        }
        for (key, prefix) in [
            ("bridge_prefix", &self.bridge_prefix),
            ("veth_prefix", &self.veth_prefix),
        ] {
            if !name_ok(prefix, 6) {
                anyhow::bail!(
                    "[network] {key} = {prefix:?}: use 1 to 6 letters, digits, - or _ (the rest of the 15-character name identifies the network or container)"
                );
            }
        }
        let subnet = |key: &str, v: &str| {
            v.parse::<berth_network::Subnet>().with_context(|| {
                format!("[network] {key} = {v:?}: give an IPv4 CIDR such as 10.213.0.0/24")
            })
        };
        Ok(berth_network::NetworkConfig {
            default_subnet: subnet("subnet", &self.subnet)?,
            default_bridge: self.bridge.clone(),
            pool: subnet("pool", &self.pool)?,
            bridge_prefix: self.bridge_prefix.clone(),
            veth_prefix: self.veth_prefix.clone(),
            ..berth_network::NetworkConfig::default()
        })
    }
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
    /// Failed password checks one client address may make, each within
    /// `failed_login_window_secs` of the last, on the registry, its token
    /// endpoint and the control API together, before it is refused (429)
    /// for a window, right password or not. 0: no limit.
    pub max_failed_logins: u32,
    pub failed_login_window_secs: u64,
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
            max_failed_logins: berth_auth::AuthConfig::default().max_failed_logins,
            failed_login_window_secs: berth_auth::AuthConfig::default().failed_login_window_secs,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn layer_limits_default_and_can_be_set() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.images.layer_limits(), berth_unpack::Limits::default());
        let c: Config = toml::from_str("[images]\nmax_layer_bytes = 1000\n").unwrap();
        let l = c.images.layer_limits();
        assert_eq!(l.max_layer_bytes, 1000);
        assert_eq!(l.max_entries, berth_unpack::Limits::default().max_entries);
    }

    #[test]
    fn the_network_section_defaults_to_the_managers_defaults() {
        let c: Config = toml::from_str("").unwrap();
        let n = c.network.to_config().unwrap();
        let d = berth_network::NetworkConfig::default();
        assert_eq!(n.default_bridge, d.default_bridge);
        assert_eq!(n.default_subnet, d.default_subnet);
        assert_eq!(n.pool, d.pool);
        assert_eq!(n.veth_prefix, d.veth_prefix);
    }

    #[test]
    fn a_second_daemon_can_have_its_own_bridge_and_names() {
        let c: Config = toml::from_str(
            "[network]\nbridge = \"berth1\"\nsubnet = \"10.214.0.0/24\"\npool = \"10.214.0.0/16\"\nbridge_prefix = \"b1-\"\nveth_prefix = \"v1-\"\n",
        )
        .unwrap();
        let n = c.network.to_config().unwrap();
        assert_eq!(n.default_bridge, "berth1");
        assert_eq!(n.default_subnet.to_string(), "10.214.0.0/24");
        assert_eq!(n.veth_prefix, "v1-");
    }

    #[test]
    fn bad_network_settings_say_which_key() {
        for (toml, key) in [
            (
                "[network]\nbridge = \"a-very-long-bridge-name\"\n",
                "bridge",
            ),
            ("[network]\nveth_prefix = \"\"\n", "veth_prefix"),
            ("[network]\nbridge_prefix = \"a/b\"\n", "bridge_prefix"),
            ("[network]\nsubnet = \"10.0.0.0\"\n", "subnet"),
            ("[network]\npool = \"nope\"\n", "pool"),
        ] {
            let c: Config = toml::from_str(toml).unwrap();
            let err = format!("{:#}", c.network.to_config().unwrap_err());
            assert!(err.contains(&format!("[network] {key}")), "{toml}: {err}");
        }
    }
}
