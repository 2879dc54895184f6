//! `/v1/plugins`: Wasm plugins. The install body and the plugin record are
//! serde mirrors of the plugin host's own `PluginSpec` and `PluginInfo`
//! (the same shape as `[[plugin]]` in `berth.toml`), with the same field
//! names: the daemon builds its answers through these, so both sides read
//! one definition.

use serde::{Deserialize, Serialize};

/// `POST /v1/plugins/push?reference=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct PluginPushQuery {
    /// `host/repo:tag` to push the component to.
    pub reference: String,
}

/// The answer to a plugin push: the reference to pin in a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginPushResponse {
    pub reference: String,
    pub digest: String,
    /// `host/repo@sha256:...`.
    pub pinned: String,
}

/// `DELETE /v1/plugins/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginRemoved {
    pub removed: String,
}

/// The plugin kinds, one per world of `wit/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    StorageBackend,
    AuthProvider,
    Scanner,
    LifecycleHook,
}

/// Whether a hook's verdicts count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PluginMode {
    #[default]
    Enforce,
    Audit,
}

/// What a plugin's failure (trap, timeout, cut-off) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    Closed,
    Open,
}

/// `POST /v1/plugins` (and the body of a reload): one plugin as
/// configured, the same shape as `[[plugin]]` in `berth.toml`. The daemon
/// reads it as the plugin host's own `PluginSpec`, which rejects unknown
/// fields; `berth-api` tests that both serialize alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginSpec {
    /// `[a-z0-9][a-z0-9._-]*`, at most 64.
    pub name: String,
    pub kind: PluginKind,
    /// A `.wasm` path on the daemon's host, or an OCI reference pinned by
    /// digest (`host/repo@sha256:...`).
    pub source: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Position among plugins of its kind (lower first; ties by name).
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub mode: PluginMode,
    /// By default closed for auth providers and hooks, open for the rest.
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// The plugin's own configuration, handed to it as JSON.
    #[serde(default = "empty_table")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: serde_json::Value,
    #[serde(default)]
    pub grants: PluginGrants,
}

/// What the sandbox lets a plugin reach beyond its imports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginGrants {
    /// Host directories preopened in the guest.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables passed through from the daemon's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// `IP:PORT` addresses the plugin may connect to.
    #[serde(default)]
    pub net: Vec<String>,
    /// Whether name lookups are allowed.
    #[serde(default)]
    pub dns: bool,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirGrant {
    pub host: String,
    pub guest: String,
    #[serde(default)]
    pub access: DirAccess,
}

/// `ro` or `rw`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DirAccess {
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

/// A loaded plugin (`GET /v1/plugins`, `GET /v1/plugins/{name}`, and the
/// answer to install, enable, disable and reload): the plugin host's
/// `PluginInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginInfo {
    pub name: String,
    pub kind: PluginKind,
    /// `sha256:...` of the component bytes.
    pub digest: String,
    pub state: PluginState,
    /// `compiled` or `hit`: whether the last load compiled the component.
    pub cache: String,
    /// For hooks: the events it subscribed to (`pre-create`, ...).
    pub subscriptions: Vec<String>,
    /// For hooks: built against the first edition of the hook contract.
    pub first_edition: bool,
    /// Calls blocked in the host past their deadline.
    pub stuck_calls: u64,
    pub spec: PluginSpec,
    pub metrics: PluginMetrics,
}

/// Whether a plugin is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PluginState {
    Enabled,
    Disabled,
    /// Failing: skipped until `until`.
    CutOff {
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        until: std::time::SystemTime,
    },
    /// Too many of its calls are blocked past their deadline.
    Stuck {
        calls: u64,
    },
}

impl PluginState {
    /// `enabled`, `disabled`, `cut-off` or `stuck`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PluginState::Enabled => "enabled",
            PluginState::Disabled => "disabled",
            PluginState::CutOff { .. } => "cut-off",
            PluginState::Stuck { .. } => "stuck",
        }
    }
}

/// A plugin's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginMetrics {
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub memory_limits: u64,
    pub traps: u64,
    pub denials: u64,
    pub audit_denials: u64,
    pub cut_offs: u64,
    /// Microseconds: the upper bound of the bucket holding the median.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}
