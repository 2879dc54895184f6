//! What the operator configures for a plugin: a `[[plugin]]` entry of
//! `berth.toml`, or the body of `POST /v1/plugins`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use berth_policy::{Mode, OnFailure};
use serde::{Deserialize, Serialize};

use crate::PluginError;

/// The four plugin kinds, one per world of `wit/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    StorageBackend,
    AuthProvider,
    Scanner,
    LifecycleHook,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::StorageBackend => "storage-backend",
            Kind::AuthProvider => "auth-provider",
            Kind::Scanner => "scanner",
            Kind::LifecycleHook => "lifecycle-hook",
        }
    }

    /// The deadline of one call when the spec sets none.
    pub fn default_timeout(self) -> Duration {
        match self {
            Kind::LifecycleHook | Kind::AuthProvider => Duration::from_millis(100),
            Kind::StorageBackend => Duration::from_secs(5),
            Kind::Scanner => Duration::from_secs(60),
        }
    }

    /// What a failure means when the spec does not say: closed for auth
    /// and hooks (security decisions), open for the rest.
    pub fn default_on_failure(self) -> OnFailure {
        match self {
            Kind::LifecycleHook | Kind::AuthProvider => OnFailure::Closed,
            Kind::StorageBackend | Kind::Scanner => OnFailure::Open,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        match s {
            "storage-backend" => Ok(Kind::StorageBackend),
            "auth-provider" => Ok(Kind::AuthProvider),
            "scanner" => Ok(Kind::Scanner),
            "lifecycle-hook" => Ok(Kind::LifecycleHook),
            other => Err(format!(
                "plugin kind {other:?} is unknown; use storage-backend, auth-provider, scanner or lifecycle-hook"
            )),
        }
    }
}

/// Default memory cap of one plugin instance.
pub const DEFAULT_MEMORY_MIB: u64 = 64;

/// One plugin as configured:
///
/// ```toml
/// [[plugin]]
/// name = "deny-root"
/// kind = "lifecycle-hook"
/// source = "/etc/berth/plugins/deny-root.wasm"   # or "host/repo@sha256:..."
/// order = 10
/// mode = "enforce"          # or "audit"
/// on_failure = "closed"     # or "open"
/// timeout_ms = 100
/// memory_mib = 64
/// [plugin.config]
/// allow_label = "berth.root-ok"
/// [plugin.grants]
/// dirs = [{ host = "/etc/berth/htpasswd", guest = "/data", access = "ro" }]
/// env = ["TZ"]
/// net = ["127.0.0.1:8080"]
/// dns = false
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// Unique among loaded plugins: `[a-z0-9][a-z0-9._-]*`, at most 64.
    pub name: String,
    pub kind: Kind,
    /// A path to a `.wasm` component, or an OCI reference pinned by digest
    /// (`host/repo@sha256:...`). The manager never reads it: the caller
    /// fetches the bytes.
    pub source: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Position among plugins of its kind (lower first; ties by name).
    #[serde(default)]
    pub order: i64,
    /// Hooks: enforce or only audit their verdicts.
    #[serde(default)]
    pub mode: Mode,
    /// What a failure (trap, timeout, cut-off) means; by default closed for
    /// auth providers and hooks, open for the rest.
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
    /// Deadline of one call; defaults per kind (100 ms for hooks and auth,
    /// 5 s for storage, 60 s for scanners).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Memory cap of an instance in MiB (default 64, at most 1024).
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// The plugin's own configuration, handed to it as JSON.
    #[serde(default = "empty_table")]
    pub config: serde_json::Value,
    #[serde(default)]
    pub grants: Grants,
}

/// What the sandbox lets a plugin reach beyond its imports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Host directories preopened in the guest.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables passed through from the daemon's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Addresses the plugin may connect to (`IP:PORT`).
    #[serde(default)]
    pub net: Vec<String>,
    /// Whether name lookups (`wasi:sockets/ip-name-lookup`) are allowed.
    #[serde(default)]
    pub dns: bool,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    #[serde(default)]
    pub access: Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    Ro,
    Rw,
}

fn yes() -> bool {
    true
}

fn empty_table() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl PluginSpec {
    /// A spec with every default, for tests and the offline runner.
    pub fn new(name: impl Into<String>, kind: Kind, source: impl Into<String>) -> PluginSpec {
        PluginSpec {
            name: name.into(),
            kind,
            source: source.into(),
            enabled: true,
            order: 0,
            mode: Mode::Enforce,
            on_failure: None,
            timeout_ms: None,
            memory_mib: None,
            config: empty_table(),
            grants: Grants::default(),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout_ms
            .map_or_else(|| self.kind.default_timeout(), Duration::from_millis)
    }

    pub fn on_failure(&self) -> OnFailure {
        self.on_failure
            .unwrap_or_else(|| self.kind.default_on_failure())
    }

    /// The memory cap in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB) << 20
    }

    /// Checks everything that can be checked without the component.
    pub fn validate(&self) -> Result<(), PluginError> {
        let bad = |message: String| PluginError::Config {
            plugin: self.name.clone(),
            message,
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
            });
        if !name_ok {
            return Err(bad(format!(
                "name {:?} is invalid: use 1-64 characters of [a-z0-9._-], starting with a letter or digit",
                self.name
            )));
        }
        if self.timeout_ms == Some(0) {
            return Err(bad("timeout_ms must be at least 1".into()));
        }
        match self.memory_mib {
            Some(0) => return Err(bad("memory_mib must be at least 1".into())),
            Some(m) if m > crate::engine::MAX_MEMORY_MIB => {
                return Err(bad(format!(
                    "memory_mib {m} is above the host's limit of {}",
                    crate::engine::MAX_MEMORY_MIB
                )));
            }
            _ => {}
        }
        if !self.config.is_object() {
            return Err(bad("config must be a table".into()));
        }
        for dir in &self.grants.dirs {
            if !dir.host.is_absolute() {
                return Err(bad(format!(
                    "granted directory {} is not an absolute path",
                    dir.host.display()
                )));
            }
            if !dir.host.is_dir() {
                return Err(bad(format!(
                    "granted directory {} does not exist or is not a directory",
                    dir.host.display()
                )));
            }
            if dir.guest.is_empty() {
                return Err(bad(format!(
                    "granted directory {} has an empty guest path",
                    dir.host.display()
                )));
            }
        }
        self.net_addrs()?;
        Ok(())
    }

    pub(crate) fn net_addrs(&self) -> Result<Vec<SocketAddr>, PluginError> {
        self.grants
            .net
            .iter()
            .map(|a| {
                a.parse().map_err(|_| PluginError::Config {
                    plugin: self.name.clone(),
                    message: format!(
                        "net grant {a:?} is not an IP:PORT address such as 127.0.0.1:8080"
                    ),
                })
            })
            .collect()
    }
}
