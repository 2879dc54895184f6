//! Write berth plugins in a few lines of Rust.
//!
//! berth loads plugins as WebAssembly components (`wasm32-wasip2`) that implement one world of
//! the `berth:plugin@0.1.1` WIT package: a lifecycle hook or policy, an auth provider, a
//! storage backend or a scanner. This crate owns the bindings for the four worlds and wraps
//! them in plain traits ([`Hook`], [`AuthProvider`], [`StorageBackend`], [`Scanner`]) with an
//! export macro each, plus what every plugin needs: its configuration ([`config`]), logging
//! into berthd's log ([`info!`] and friends) and name globs ([`glob_match`]). It never talks to
//! the host through anything but the WIT imports.
//!
//! # A complete policy
//!
//! ```no_run
//! use berth_plugin_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default, deny_unknown_fields)]
//! struct Config { max_memory: u64 }
//!
//! #[derive(Default)]
//! struct CapMemory;
//!
//! impl Hook for CapMemory {
//!     // Only `pre_create` is overridden, so berth sends this plugin nothing else.
//!     fn pre_create(&self, spec: &ContainerSpec) -> Verdict {
//!         let config: Config = match berth_plugin_sdk::config() {
//!             Ok(config) => config,
//!             Err(err) => return Verdict::deny(err.to_string()),
//!         };
//!         match spec.limits.memory {
//!             Some(memory) if memory <= config.max_memory => Verdict::Allow,
//!             _ => Verdict::deny(format!(
//!                 "container {}: set a memory limit of at most {} bytes (-m)",
//!                 spec.name, config.max_memory
//!             )),
//!         }
//!     }
//! }
//!
//! berth_plugin_sdk::export_hook!(CapMemory);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (a `cdylib` crate) and point
//! a `[[plugin]]` entry of `berth.toml` at the `.wasm` file; `examples/policy-template` is a
//! copyable starting point.
//!
//! # How instances behave
//! berth creates one instance of the exported type (with `Default`) and calls it for many
//! events, so caches in `Cell`/`RefCell` fields survive between calls. A panic is a trap: berth
//! reports it as the plugin's failure (hooks and auth fail closed) and discards the instance.
//! The sandbox has no file system, network or environment unless the operator grants them.

pub mod auth;
pub mod bindings;
mod config;
pub mod glob;
pub mod hook;
pub mod log;
pub mod scanner;
pub mod storage;

pub use auth::AuthProvider;
pub use config::{
    CachedConfig, ConfigError, config, config_json, config_value, parse as parse_config,
};
pub use glob::{glob_match, matches_any};
pub use hook::{Hook, Verdict};
pub use scanner::Scanner;
pub use storage::{BlobWriter, StorageBackend};

/// Nanoseconds since the Unix epoch, from the host's clock.
pub fn now_nanos() -> u64 {
    bindings::common::berth::plugin::clock::now()
}

/// What a plugin usually needs: `use berth_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::auth::{
        Action, AuthProvider, AuthnResult, BasicCredentials, Credentials, Decision, Principal,
        Target,
    };
    pub use crate::glob::{glob_match, matches_any};
    pub use crate::hook::{
        ContainerEvent, ContainerSpec, CopyDirection, CopyEvent, Event, EventKind, ExecEvent, Hook,
        ImageEvent, Limits, Mount, MountKind, Pair, Patch, UpdateEvent, Verdict, label,
    };
    pub use crate::scanner::{
        Entry, FileKind, Finding, FsError, ImageInfo, Rootfs, ScanError, Scanner, Severity,
    };
    pub use crate::storage::{BlobInfo, BlobWriter, StorageBackend, StorageError};
    pub use crate::{debug, error, info, trace, warn};
}
