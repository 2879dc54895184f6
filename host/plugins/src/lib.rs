//! The wasmtime component host: loads `berth:plugin@0.1.1` components
//! (`wit/`; hooks built against 0.1.0 too), runs them sandboxed, and adapts
//! them to berth's native traits.
//! It owns the engine, the compile cache, the sandbox and the call path;
//! it never decides policy itself (that is `berth-policy`'s chain and
//! `wit/auth.wit`'s chain semantics) and never fetches plugins (the caller
//! hands it bytes).
//!
//! # Running plugins
//! - One wasmtime `Engine` per process (component model, epoch
//!   interruption with a 1 ms ticker thread, pooling allocator of
//!   [`engine::POOL_INSTANCES`] instances, parallel compilation).
//! - Components are compiled once and cached as `CACHE_DIR/KEY.cwasm`, the
//!   key being the sha256 of the bytes, the wasmtime version and the engine
//!   settings; a cache hit deserializes (sub-millisecond) instead of
//!   compiling (about 0.2 s release, seconds in debug).
//! - Each plugin keeps up to 8 warm (store, instance) pairs; a call takes
//!   one, sets its deadline and returns it. A trap discards it.
//! - Every call runs under a deadline (default 100 ms for hooks and auth,
//!   5 s storage, 60 s scanners; `timeout_ms`) and a memory cap (64 MiB;
//!   `memory_mib`), and in a WASI sandbox with nothing preopened, no
//!   environment, no network, stdout/stderr captured into the log, unless
//!   `[plugin.grants]` says otherwise. The deadline is wall-clock and holds
//!   for WASI waits too: calls are async and dropped at the deadline; a
//!   plugin with granted directories runs on its own threads, so a blocking
//!   file operation (a FIFO) leaves its caller free at the deadline, and the
//!   plugin is refused while four such calls are stuck.
//! - A plugin has at most 32 calls running at once (an eighth of the
//!   engine's pool of instances, which every plugin shares); more are
//!   refused at once with `Busy`, so a slow plugin cannot starve the others.
//! - What a plugin returns (reasons, names, findings, patches, log records)
//!   is cut to a sane size with a note (`bounds`).
//! - Failures are [`PluginError`]s: `Timeout`, `MemoryLimit`, `Trap` (with
//!   a panic's message), `CutOff` (after `breaker_threshold` failures in a
//!   row the plugin is skipped for `breaker_cool_off`), `Stuck`, `Busy`,
//!   `Disabled`...
//!
//! # Using it (the daemon's side)
//! ```no_run
//! use berth_plugins::{ManagerOptions, PluginManager, PluginSpec};
//! # fn demo(bytes: &[u8], rootfs: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! let manager = PluginManager::new(ManagerOptions::new("/var/lib/berth/plugins/cache"));
//! // [[plugin]] entries of berth.toml deserialize into PluginSpec.
//! let spec: PluginSpec = toml::from_str(r#"
//!     name = "deny-root"
//!     kind = "lifecycle-hook"
//!     source = "/etc/berth/plugins/deny-root.wasm"
//! "#)?;
//! manager.load(spec, bytes)?;                  // the caller reads or fetches the bytes
//!
//! // Hooks: berth_policy's chain over the enabled hook plugins, in order.
//! let event = berth_policy::Event::from_json(r#"{"pre-create": {"uid": 0}}"#)?;
//! let outcome = manager.run_hooks(&event);     // or manager.hook_chain().run(&event)
//! if !outcome.allowed { /* outcome.denied_by: (hook, reason) */ }
//!
//! // Auth: a chain implementing berth_auth::{Authenticator, Authorizer},
//! // with the native provider (if any) placed by order.
//! let chain = manager.auth_chain(None);
//!
//! // Scanners, over a read-only view of an unpacked image.
//! let view = berth_scan::RootView::open(rootfs)?;
//! let reports = manager.scan(&berth_scan::ImageInfo::default(), &view);
//!
//! // Storage: a berth_content::BlobBackend.
//! // let backend = manager.storage_backend("s3")?;
//!
//! // Management: list / inspect / enable / disable / remove / reload.
//! let mut metrics = String::new();
//! manager.render_prometheus(&mut metrics);
//! # let _ = (chain, reports); Ok(()) }
//! ```
//!
//! Calls are blocking (they return by their deadline): run scanners and
//! storage calls on blocking threads. Hook and auth calls on a warm instance
//! take microseconds.
//!
//! `berth plugin test` is [`test_plugin`].

mod auth;
mod bindings;
mod bounds;
mod breaker;
mod cache;
mod capabilities;
pub mod engine;
mod error;
mod hooks;
mod manager;
mod metrics;
mod offline;
mod plugin;
mod runner;
mod sandbox;
mod scan;
mod spec;
mod state;
mod storage;

pub use auth::{AuthChain, AuthnAnswer, AuthzAnswer, NativeAuth, PluginAuth};
pub use cache::{CacheOutcome, digest_of};
pub use error::{PluginError, StorageFailure};
pub use hooks::PluginHook;
pub use manager::{ManagerOptions, PluginInfo, PluginManager, PluginState};
pub use metrics::MetricsSnapshot;
pub use offline::{AuthTest, ScanTest, test_plugin};
pub use scan::{PluginScanner, ScanReport};
pub use spec::{Access, DEFAULT_MEMORY_MIB, DirGrant, Grants, Kind, PluginSpec};
