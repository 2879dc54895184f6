//! One loaded plugin: its compiled component, its `InstancePre`, a small
//! pool of warm instances, and the call path every adapter goes through
//! (deadline, memory cap, error typing, metrics, circuit breaker).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_policy::EventKind;
use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use crate::bindings::{auth, hook, scanner, storage};
use crate::breaker::Breaker;
use crate::cache::CacheOutcome;
use crate::engine::{self, Shared};
use crate::metrics::Metrics;
use crate::spec::{Kind, PluginSpec};
use crate::state::{HostState, Limiter, Output, PluginConfig};
use crate::{PluginError, sandbox};

/// The typed `InstancePre` of a plugin's world.
pub(crate) enum Pre {
    Hook(hook::LifecycleHookPre<HostState>),
    Auth(auth::AuthProviderPre<HostState>),
    Scanner(scanner::ScannerPre<HostState>),
    Storage(storage::StorageBackendPre<HostState>),
}

/// The exports of one instance.
pub(crate) enum Exports {
    Hook(hook::LifecycleHook),
    Auth(auth::AuthProvider),
    Scanner(scanner::Scanner),
    Storage(storage::StorageBackend),
}

/// A store with an instance in it, ready for calls.
pub(crate) struct Warm {
    pub store: Store<HostState>,
    pub exports: Exports,
}

/// Idle instances kept per plugin; more may exist during concurrent calls.
pub(crate) const MAX_WARM: usize = 8;

pub(crate) struct Plugin {
    pub spec: PluginSpec,
    pub digest: String,
    pub cache: CacheOutcome,
    pub metrics: Arc<Metrics>,
    pub breaker: Arc<Breaker>,
    /// Hooks only: asked once at load.
    pub subscriptions: Vec<EventKind>,
    pre: Pre,
    shared: &'static Shared,
    config: Arc<PluginConfig>,
    net: Arc<Vec<SocketAddr>>,
    name: Arc<str>,
    timeout: Duration,
    memory_limit: u64,
    warm: Mutex<Vec<Warm>>,
}

impl Plugin {
    /// Compiles (or loads from the cache) and links a component, checks it
    /// exports the world of `spec.kind`, and warms one instance.
    pub fn load(
        spec: PluginSpec,
        bytes: &[u8],
        cache_dir: &std::path::Path,
        metrics: Arc<Metrics>,
        breaker: Arc<Breaker>,
    ) -> Result<Plugin, PluginError> {
        spec.validate()?;
        let shared = engine::shared()?;
        let (component, cache) = crate::cache::load(&shared.engine, cache_dir, &spec.name, bytes)?;
        let pre = link(shared, &spec, &component)?;
        let json = serde_json::to_string(&spec.config).map_err(|e| PluginError::Config {
            plugin: spec.name.clone(),
            message: format!("config cannot be written as JSON: {e}"),
        })?;
        let table = spec.config.as_object().cloned().unwrap_or_default();
        let mut plugin = Plugin {
            digest: crate::cache::digest_of(bytes),
            cache,
            metrics,
            breaker,
            subscriptions: Vec::new(),
            pre,
            shared,
            config: Arc::new(PluginConfig { json, table }),
            net: Arc::new(spec.net_addrs()?),
            name: Arc::from(spec.name.as_str()),
            timeout: spec.timeout(),
            memory_limit: spec.memory_limit(),
            spec,
            warm: Mutex::new(Vec::new()),
        };
        // Instantiate once now, so a component that cannot start fails the
        // load rather than its first call.
        let warm = plugin.instantiate()?;
        plugin.checkin(warm);
        if plugin.spec.kind == Kind::LifecycleHook {
            let kinds = plugin.call(|store, exports| match exports {
                Exports::Hook(h) => h.berth_plugin_hooks().call_subscriptions(store),
                _ => Err(wasmtime::format_err!("not a hook")),
            })?;
            plugin.subscriptions = kinds.into_iter().map(crate::hooks::event_kind).collect();
        }
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind
    }

    /// Runs `f` on a warm instance under the plugin's deadline and memory
    /// cap. A trap discards the instance (it poisons its store).
    pub fn call<R>(
        &self,
        f: impl FnOnce(&mut Store<HostState>, &Exports) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.breaker
            .check(&self.name)
            .inspect_err(|e| self.metrics.error(e))?;
        let mut warm = match self.checkout() {
            Ok(w) => w,
            Err(e) => return Err(self.failed(e)),
        };
        let result = self.run_on(&mut warm, f);
        if result.is_ok() {
            self.checkin(warm);
        }
        result
    }

    /// Like [`Plugin::call`] on an instance the caller holds (a storage
    /// writer keeps one for the life of its resource). After an error the
    /// instance must be dropped.
    pub fn run_on<R>(
        &self,
        warm: &mut Warm,
        f: impl FnOnce(&mut Store<HostState>, &Exports) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let start = Instant::now();
        warm.store.set_epoch_deadline(engine::ticks(self.timeout));
        let result = f(&mut warm.store, &warm.exports);
        let elapsed = start.elapsed();
        self.metrics.call(elapsed);
        let stderr = self.drain_output(&mut warm.store);
        match result {
            Ok(r) => {
                self.breaker.success();
                Ok(r)
            }
            Err(e) => Err(self.failed(self.classify(&e, warm.store.data(), elapsed, &stderr))),
        }
    }

    /// Counts a failure of the plugin (metrics, breaker) and passes it on.
    pub fn failed(&self, error: PluginError) -> PluginError {
        self.metrics.error(&error);
        if self.breaker.failure() {
            tracing::warn!(plugin = %self.name, error = %error, "plugin cut off after repeated failures");
        } else {
            tracing::warn!(plugin = %self.name, error = %error, "plugin call failed");
        }
        error
    }

    /// A warm instance, or a new one.
    pub fn checkout(&self) -> Result<Warm, PluginError> {
        let idle = self.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(w) => Ok(w),
            None => self.instantiate(),
        }
    }

    /// Returns an instance after a successful call.
    pub fn checkin(&self, warm: Warm) {
        let data = warm.store.data();
        if data.stdout.nearly_full() || data.stderr.nearly_full() {
            return;
        }
        let mut pool = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_WARM {
            pool.push(warm);
        }
    }

    fn instantiate(&self) -> Result<Warm, PluginError> {
        let stdout = Output::new();
        let stderr = Output::new();
        let wasi = sandbox::wasi_ctx(&self.spec, &self.net, &stdout, &stderr)?;
        let state = HostState {
            plugin: Arc::clone(&self.name),
            config: Arc::clone(&self.config),
            wasi,
            table: wasmtime::component::ResourceTable::new(),
            limiter: Limiter::new(usize::try_from(self.memory_limit).unwrap_or(usize::MAX)),
            stdout,
            stderr,
        };
        let mut store = Store::new(&self.shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(engine::ticks(self.timeout));
        let start = Instant::now();
        let exports = match &self.pre {
            Pre::Hook(pre) => pre.instantiate(&mut store).map(Exports::Hook),
            Pre::Auth(pre) => pre.instantiate(&mut store).map(Exports::Auth),
            Pre::Scanner(pre) => pre.instantiate(&mut store).map(Exports::Scanner),
            Pre::Storage(pre) => pre.instantiate(&mut store).map(Exports::Storage),
        };
        match exports {
            Ok(exports) => Ok(Warm { store, exports }),
            Err(e) => {
                let stderr = self.drain_output(&mut store);
                Err(self.classify(&e, store.data(), start.elapsed(), &stderr))
            }
        }
    }

    /// Logs what the guest printed; returns stderr for error messages.
    fn drain_output(&self, store: &mut Store<HostState>) -> String {
        let data = store.data_mut();
        let out = data.stdout.take_new();
        let err = data.stderr.take_new();
        for line in out.lines().filter(|l| !l.is_empty()) {
            tracing::info!(target: "berth_plugin", plugin = %self.name, stream = "stdout", "{line}");
        }
        for line in err.lines().filter(|l| !l.is_empty()) {
            tracing::warn!(target: "berth_plugin", plugin = %self.name, stream = "stderr", "{line}");
        }
        err
    }

    fn classify(
        &self,
        error: &wasmtime::Error,
        state: &HostState,
        elapsed: Duration,
        stderr: &str,
    ) -> PluginError {
        let plugin = self.name.to_string();
        if state.limiter.hit_memory_cap {
            return PluginError::MemoryLimit {
                plugin,
                limit: state.limiter.memory_cap as u64,
            };
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return PluginError::Timeout {
                plugin,
                after: elapsed,
            };
        }
        let mut message = match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        };
        // A Rust guest's panic message is on its stderr.
        let panic = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        if !panic.is_empty() {
            message = format!("{message}: {panic}");
        }
        PluginError::Trap { plugin, message }
    }
}

/// Links `component` against its world and checks its exports.
fn link(shared: &Shared, spec: &PluginSpec, component: &Component) -> Result<Pre, PluginError> {
    let linker = match spec.kind {
        Kind::LifecycleHook => &shared.hook,
        Kind::AuthProvider => &shared.auth,
        Kind::Scanner => &shared.scanner,
        Kind::StorageBackend => &shared.storage,
    };
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| PluginError::Load {
            plugin: spec.name.clone(),
            message: format!(
                "it imports something the {} world does not provide: {e:#}",
                spec.kind
            ),
        })?;
    let wrong = |e: wasmtime::Error| PluginError::WrongKind {
        plugin: spec.name.clone(),
        expected: spec.kind.as_str(),
        message: format!("{e:#}"),
    };
    Ok(match spec.kind {
        Kind::LifecycleHook => Pre::Hook(hook::LifecycleHookPre::new(pre).map_err(wrong)?),
        Kind::AuthProvider => Pre::Auth(auth::AuthProviderPre::new(pre).map_err(wrong)?),
        Kind::Scanner => Pre::Scanner(scanner::ScannerPre::new(pre).map_err(wrong)?),
        Kind::StorageBackend => Pre::Storage(storage::StorageBackendPre::new(pre).map_err(wrong)?),
    })
}
