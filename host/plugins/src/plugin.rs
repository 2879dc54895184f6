//! One loaded plugin: its compiled component, its `InstancePre`, a small
//! pool of warm instances, and the call path every adapter goes through
//! (deadline, memory cap, error typing, metrics, circuit breaker).
//!
//! Every call, instantiation included, answers by its deadline: the guest's
//! own code is stopped by epoch interruption, a wait in WASI is dropped, and
//! a call of a plugin with granted directories still waiting (perhaps on a
//! blocking file operation) is handed to the plugin's own runtime and
//! counted as stuck (see `runner`). An instance whose call failed or overran
//! is discarded.
//!
//! Every call holds an instance of the engine's pool, which all plugins
//! share, from its admission until it ends; so a plugin has at most
//! [`MAX_IN_FLIGHT`] calls running (its stuck ones included) and a call
//! beyond them is refused at once, without being called: one slow plugin
//! cannot take the pool and leave the others without instances.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_policy::EventKind;
use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use crate::bindings::{auth, hook, policy, scanner, storage};
use crate::breaker::Breaker;
use crate::cache::CacheOutcome;
use crate::engine::{self, Shared};
use crate::metrics::Metrics;
use crate::runner::{self, Own};
use crate::spec::{Kind, PluginSpec};
use crate::state::{HostState, Limiter, Output, PluginConfig};
use crate::{PluginError, bounds, sandbox};

/// The typed `InstancePre` of a plugin's world.
#[derive(Clone)]
pub(crate) enum Pre {
    /// A hook built against the first edition of the contract (`hooks`).
    Hook(hook::LifecycleHookPre<HostState>),
    /// A hook built against the complete edition (`lifecycle`).
    Policy(policy::LifecyclePolicyPre<HostState>),
    Auth(auth::AuthProviderPre<HostState>),
    Scanner(scanner::ScannerPre<HostState>),
    Storage(storage::StorageBackendPre<HostState>),
}

/// The exports of one instance.
pub(crate) enum Exports {
    Hook(hook::LifecycleHook),
    Policy(policy::LifecyclePolicy),
    Auth(auth::AuthProvider),
    Scanner(scanner::Scanner),
    Storage(storage::StorageBackend),
}

/// A store with an instance in it, ready for calls.
pub(crate) struct Warm {
    pub store: Store<HostState>,
    pub exports: Exports,
}

/// What an adapter's call returns: the guest's answer, borrowing the store
/// and the exports it was given.
pub(crate) type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// Idle instances kept per plugin; more may exist during concurrent calls.
pub(crate) const MAX_WARM: usize = 8;

/// Calls of one plugin still waiting in the host past their deadline before
/// the plugin is refused (without being called) until some of them end.
pub(crate) const MAX_STUCK: usize = 4;

/// Calls of one plugin running at once, stuck ones included, before more
/// are refused without being called: each holds an instance of the pool of
/// [`engine::POOL_INSTANCES`] that every plugin shares, and a plugin slow
/// to answer (or made slow by its input) must not hold more than an eighth
/// of it.
pub(crate) const MAX_IN_FLIGHT: usize = engine::POOL_INSTANCES as usize / 8;

/// A call's place among its plugin's calls in flight, given back when the
/// call ends (dropped).
pub(crate) struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

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
    /// Where its timers, sockets and file operations run.
    io: tokio::runtime::Handle,
    /// Plugins with granted directories: their own runtime, which takes
    /// over calls still waiting at their deadline.
    own: Option<Own>,
    config: Arc<PluginConfig>,
    net: Arc<Vec<SocketAddr>>,
    name: Arc<str>,
    timeout: Duration,
    memory_limit: u64,
    warm: Mutex<Vec<Warm>>,
    /// Calls admitted and not yet ended (a stuck call is counted by `own`
    /// once its caller has gone on).
    in_flight: Arc<AtomicUsize>,
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
        let own = if spec.grants.dirs.is_empty() {
            None
        } else {
            Some(Own::new(&spec.name).map_err(|message| PluginError::Engine { message })?)
        };
        let io = match own.as_ref().and_then(Own::handle) {
            Some(handle) => handle.clone(),
            None => runner::io_runtime()
                .map_err(|message| PluginError::Engine { message })?
                .clone(),
        };
        let (component, cache) = crate::cache::load(&shared.engine, cache_dir, &spec.name, bytes)?;
        let pre = link(shared, &spec, &component)?;
        let json = serde_json::to_string(&spec.config).map_err(|e| PluginError::Config {
            plugin: spec.name.clone(),
            message: format!("config cannot be written as JSON: {e}"),
        })?;
        let table = spec.config.as_object().cloned().unwrap_or_default();
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let mut plugin = Plugin {
            digest: crate::cache::digest_of(bytes),
            cache,
            metrics,
            breaker,
            subscriptions: Vec::new(),
            pre,
            shared,
            io,
            own,
            config: Arc::new(PluginConfig { json, table }),
            net: Arc::new(spec.net_addrs()?),
            name,
            timeout: spec.timeout(),
            memory_limit: spec.memory_limit(),
            spec,
            warm: Mutex::new(Vec::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        // Instantiate once now, so a component that cannot start fails the
        // load rather than its first call.
        let warm = plugin.instantiate()?;
        plugin.checkin(warm);
        if plugin.spec.kind == Kind::LifecycleHook {
            let name = Arc::clone(&plugin.name);
            plugin.subscriptions = plugin.call(move |store, exports| {
                Box::pin(async move {
                    match exports {
                        Exports::Hook(h) => Ok(crate::hooks::first_edition_kinds(
                            &name,
                            h.berth_plugin_hooks().call_subscriptions(store).await?,
                        )),
                        Exports::Policy(h) => Ok(crate::hooks::kinds(
                            &name,
                            h.berth_plugin_lifecycle().call_subscriptions(store).await?,
                        )),
                        _ => Err(wasmtime::format_err!("not a hook")),
                    }
                })
            })?;
        }
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind
    }

    /// Whether it is a hook built against the first edition (`hooks`).
    pub fn first_edition(&self) -> bool {
        matches!(self.pre, Pre::Hook(_))
    }

    /// Calls still waiting in the host past their deadline.
    pub fn stuck(&self) -> usize {
        self.own.as_ref().map_or(0, Own::stuck)
    }

    /// Runs `f` on a warm instance under the plugin's deadline and memory
    /// cap. A failed or overrun call discards the instance (a trap poisons
    /// its store).
    pub fn call<R, F>(&self, f: F) -> Result<R, PluginError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Store<HostState>, &'a Exports) -> CallFuture<'a, R>
            + Send
            + 'static,
    {
        let _admission = self.admit()?;
        let warm = self.checkout().map_err(|e| self.failed(e))?;
        let (warm, result) = self.run_on(warm, f);
        if let Some(warm) = warm {
            self.checkin(warm);
        }
        result
    }

    /// Whether the plugin may be called now: not cut off by the breaker,
    /// not with too many calls stuck in the host, and not with as many calls
    /// running as a plugin may have. The caller holds the [`Admission`] for
    /// as long as its call (or its instance) lives.
    pub fn admit(&self) -> Result<Admission, PluginError> {
        self.breaker
            .check(&self.name)
            .inspect_err(|e| self.metrics.error(e))?;
        let stuck = self.stuck();
        if stuck >= MAX_STUCK {
            let error = PluginError::Stuck {
                plugin: self.name.to_string(),
                calls: stuck,
            };
            self.metrics.error(&error);
            return Err(error);
        }
        // Counted before the check, so that concurrent callers cannot all
        // see one place left.
        let running = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(Arc::clone(&self.in_flight));
        if running + stuck >= MAX_IN_FLIGHT {
            drop(admission);
            let error = PluginError::Busy {
                plugin: self.name.to_string(),
                calls: running + stuck,
            };
            self.metrics.error(&error);
            tracing::warn!(plugin = %self.name, error = %error, "plugin call refused");
            return Err(error);
        }
        Ok(admission)
    }

    /// Like [`Plugin::call`] on an instance the caller holds (a storage
    /// writer keeps one for the life of its resource). Gives the instance
    /// back when it may be used again: only after a call that answered.
    pub fn run_on<R, F>(&self, warm: Warm, f: F) -> (Option<Warm>, Result<R, PluginError>)
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Store<HostState>, &'a Exports) -> CallFuture<'a, R>
            + Send
            + 'static,
    {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut warm = warm;
        warm.store.set_epoch_deadline(engine::ticks(self.timeout));
        let answered = self.drive(deadline, async move {
            let out = f(&mut warm.store, &warm.exports).await;
            (warm, out)
        });
        let elapsed = start.elapsed();
        self.metrics.call(elapsed);
        match answered {
            Some((mut warm, Ok(r))) => {
                self.drain_output(&mut warm.store);
                self.breaker.success();
                (Some(warm), Ok(r))
            }
            Some((mut warm, Err(e))) => {
                let stderr = self.drain_output(&mut warm.store);
                let error = self.classify(&e, warm.store.data(), elapsed, &stderr);
                (None, Err(self.failed(error)))
            }
            None => (None, Err(self.failed(self.timed_out(elapsed)))),
        }
    }

    /// Polls `call` on this thread until it answers or `deadline` passes
    /// (`None`). Past the deadline a plugin's own runtime takes the call
    /// over, as stuck; without one the call is dropped.
    fn drive<T, F>(&self, deadline: Instant, call: F) -> Option<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        match &self.own {
            None => runner::run_until(&self.io, deadline, call),
            Some(own) => {
                let mut call = Box::pin(call);
                let answer = runner::run_until(&self.io, deadline, &mut call);
                if answer.is_none() {
                    own.reap(&self.name, async move {
                        call.await;
                    });
                }
                answer
            }
        }
    }

    fn timed_out(&self, elapsed: Duration) -> PluginError {
        PluginError::Timeout {
            plugin: self.name.to_string(),
            after: elapsed,
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
        let deadline = start + self.timeout;
        let pre = self.pre.clone();
        let answered = self.drive(deadline, async move {
            let exports = match &pre {
                Pre::Hook(p) => p.instantiate_async(&mut store).await.map(Exports::Hook),
                Pre::Policy(p) => p.instantiate_async(&mut store).await.map(Exports::Policy),
                Pre::Auth(p) => p.instantiate_async(&mut store).await.map(Exports::Auth),
                Pre::Scanner(p) => p.instantiate_async(&mut store).await.map(Exports::Scanner),
                Pre::Storage(p) => p.instantiate_async(&mut store).await.map(Exports::Storage),
            };
            (store, exports)
        });
        let elapsed = start.elapsed();
        match answered {
            Some((store, Ok(exports))) => Ok(Warm { store, exports }),
            Some((mut store, Err(e))) => {
                let stderr = self.drain_output(&mut store);
                Err(self.classify(&e, store.data(), elapsed, &stderr))
            }
            None => Err(self.timed_out(elapsed)),
        }
    }

    /// Logs what the guest printed; returns stderr for error messages.
    fn drain_output(&self, store: &mut Store<HostState>) -> String {
        let data = store.data_mut();
        let out = data.stdout.take_new();
        let err = data.stderr.take_new();
        for line in out.lines().filter(|l| !l.is_empty()) {
            let line = bounds::text(line.to_owned(), bounds::LOG);
            tracing::info!(target: "berth_plugin", plugin = %self.name, stream = "stdout", "{line}");
        }
        for line in err.lines().filter(|l| !l.is_empty()) {
            let line = bounds::text(line.to_owned(), bounds::LOG);
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
        PluginError::Trap {
            plugin,
            message: bounds::text(message, bounds::MESSAGE),
        }
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
        // The complete edition if the component exports it, else the first.
        Kind::LifecycleHook => match policy::LifecyclePolicyPre::new(pre.clone()) {
            Ok(policy) => Pre::Policy(policy),
            Err(complete) => match hook::LifecycleHookPre::new(pre) {
                Ok(first) => Pre::Hook(first),
                Err(e) => {
                    return Err(wrong(wasmtime::format_err!(
                        "it exports neither berth:plugin/lifecycle ({complete:#}) nor berth:plugin/hooks ({e:#})"
                    )));
                }
            },
        },
        Kind::AuthProvider => Pre::Auth(auth::AuthProviderPre::new(pre).map_err(wrong)?),
        Kind::Scanner => Pre::Scanner(scanner::ScannerPre::new(pre).map_err(wrong)?),
        Kind::StorageBackend => Pre::Storage(storage::StorageBackendPre::new(pre).map_err(wrong)?),
    })
}
