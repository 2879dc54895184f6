//! Why a plugin call or a plugin management operation failed.

use std::time::{Duration, SystemTime};

/// A plugin failure, typed so callers can tell a slow plugin from a broken
/// one. Messages say which plugin, what happened and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    #[error(
        "plugin {plugin} timed out after {after:?}; it was stopped (raise timeout_ms if it needs longer)"
    )]
    Timeout { plugin: String, after: Duration },
    #[error(
        "plugin {plugin} hit its memory limit of {limit} bytes and was stopped (raise memory_mib if it needs more)"
    )]
    MemoryLimit { plugin: String, limit: u64 },
    /// The guest trapped: a panic (its message is included), `unreachable`,
    /// an out-of-bounds access...
    #[error("plugin {plugin} crashed: {message}")]
    Trap { plugin: String, message: String },
    #[error(
        "plugin {plugin} failed too many times in a row and is cut off until {until:?}; see its log"
    )]
    CutOff { plugin: String, until: SystemTime },
    /// Calls of the plugin are blocked in the host past their deadline
    /// (a blocking file operation in a granted directory, such as opening a
    /// FIFO nobody writes to); it is not called until some of them end.
    #[error(
        "plugin {plugin} has {calls} calls still blocked past their deadline (a FIFO or device in a granted directory?); it is not called until they end"
    )]
    Stuck { plugin: String, calls: usize },
    /// The plugin already has as many calls running as one plugin may
    /// (each holds an instance of the pool every plugin shares); more are
    /// refused without being called until some of them end.
    #[error(
        "plugin {plugin} already has {calls} calls running, the most one plugin may have at once; it is not called until some of them answer (is it slow? see its log and timeout_ms)"
    )]
    Busy { plugin: String, calls: usize },
    #[error("plugin {plugin} is disabled; enable it with `berth plugin enable {plugin}`")]
    Disabled { plugin: String },
    #[error("no plugin named {plugin}")]
    NotFound { plugin: String },
    #[error("a plugin named {plugin} is already loaded; remove it or reload it")]
    Duplicate { plugin: String },
    #[error("loading plugin {plugin} failed: {message}")]
    Load { plugin: String, message: String },
    #[error("plugin {plugin} is not a {expected} plugin: {message}")]
    WrongKind {
        plugin: String,
        expected: &'static str,
        message: String,
    },
    #[error("plugin {plugin} is misconfigured: {message}")]
    Config { plugin: String, message: String },
    /// A storage plugin's `storage-error`.
    #[error("storage plugin {plugin}: {error}")]
    Storage {
        plugin: String,
        error: crate::StorageFailure,
    },
    /// A scanner's `scan-error`.
    #[error("scanner {plugin} could not scan: {message}")]
    Scan {
        plugin: String,
        unsupported: bool,
        message: String,
    },
    /// The plugin answered something its contract does not allow (a
    /// `mutate` outside `pre-create`, say).
    #[error("plugin {plugin} broke its contract: {message}")]
    Contract { plugin: String, message: String },
    /// The host itself failed (pool exhausted, a host-side I/O error).
    #[error("running plugin {plugin} failed: {message}")]
    Host { plugin: String, message: String },
    #[error("the plugin engine could not start: {message}")]
    Engine { message: String },
}

impl PluginError {
    /// The plugin the error is about, when there is one.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            PluginError::Engine { .. } => None,
            PluginError::Timeout { plugin, .. }
            | PluginError::MemoryLimit { plugin, .. }
            | PluginError::Trap { plugin, .. }
            | PluginError::CutOff { plugin, .. }
            | PluginError::Stuck { plugin, .. }
            | PluginError::Busy { plugin, .. }
            | PluginError::Disabled { plugin }
            | PluginError::NotFound { plugin }
            | PluginError::Duplicate { plugin }
            | PluginError::Load { plugin, .. }
            | PluginError::WrongKind { plugin, .. }
            | PluginError::Config { plugin, .. }
            | PluginError::Storage { plugin, .. }
            | PluginError::Scan { plugin, .. }
            | PluginError::Contract { plugin, .. }
            | PluginError::Host { plugin, .. } => Some(plugin),
        }
    }

    /// Whether the plugin itself broke (trap, timeout, memory): these count
    /// towards the circuit breaker and discard the instance.
    pub fn is_crash(&self) -> bool {
        matches!(
            self,
            PluginError::Timeout { .. }
                | PluginError::MemoryLimit { .. }
                | PluginError::Trap { .. }
        )
    }
}

/// A storage plugin's own error (`storage-error` in `wit/storage.wit`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageFailure {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Io(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}
