//! The registry of loaded plugins: load, list, inspect, enable, disable,
//! remove, reload (atomically), and the adapters to berth's native traits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::PluginError;
use crate::breaker::Breaker;
use crate::cache::CacheOutcome;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::plugin::Plugin;
use crate::spec::{Kind, PluginSpec};

/// How the manager runs plugins.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Where compiled components are cached (`ROOT/plugins/cache`). Must be
    /// writable only by berthd.
    pub cache_dir: PathBuf,
    /// Failures in a row that cut a plugin off.
    pub breaker_threshold: u32,
    /// How long a cut-off plugin is skipped before it is tried again.
    pub breaker_cool_off: Duration,
}

impl ManagerOptions {
    pub fn new(cache_dir: impl Into<PathBuf>) -> ManagerOptions {
        ManagerOptions {
            cache_dir: cache_dir.into(),
            breaker_threshold: 5,
            breaker_cool_off: Duration::from_secs(30),
        }
    }
}

/// Whether a plugin is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginState {
    Enabled,
    Disabled,
    /// Failing: skipped until `until`.
    CutOff {
        until: SystemTime,
    },
    /// Too many of its calls are blocked in the host past their deadline:
    /// skipped until some of them end.
    Stuck {
        calls: usize,
    },
}

/// What `inspect` and `list` report about one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub kind: Kind,
    /// `sha256:...` of the component bytes.
    pub digest: String,
    pub state: PluginState,
    /// Whether the last load compiled the component or hit the cache.
    pub cache: CacheOutcome,
    /// For hooks: the events it subscribed to.
    pub subscriptions: Vec<berth_policy::EventKind>,
    /// For hooks: whether it was built against the first edition of the
    /// hook contract (`hooks`, 0.1.0), which sees fewer events and fields.
    pub first_edition: bool,
    /// Calls blocked in the host past their deadline (a blocking file
    /// operation in a granted directory), still holding a thread each.
    pub stuck_calls: usize,
    pub spec: PluginSpec,
    pub metrics: MetricsSnapshot,
}

pub(crate) struct Slot {
    pub plugin: Arc<Plugin>,
    pub enabled: bool,
}

pub(crate) struct Inner {
    pub options: ManagerOptions,
    pub plugins: RwLock<BTreeMap<String, Slot>>,
}

/// Loaded plugins; cheap to clone and share between threads.
#[derive(Clone)]
pub struct PluginManager {
    pub(crate) inner: Arc<Inner>,
}

impl PluginManager {
    /// A manager with no plugins. The process's engine starts on the first
    /// load.
    pub fn new(options: ManagerOptions) -> PluginManager {
        PluginManager {
            inner: Arc::new(Inner {
                options,
                plugins: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Loads a plugin from its component bytes. Compiles it (or hits the
    /// cache), checks it exports `spec.kind`'s world, starts one instance
    /// and, for hooks, asks its subscriptions. A duplicate name is an error.
    pub fn load(&self, spec: PluginSpec, bytes: &[u8]) -> Result<PluginInfo, PluginError> {
        if self.read().contains_key(&spec.name) {
            return Err(PluginError::Duplicate { plugin: spec.name });
        }
        let enabled = spec.enabled;
        let plugin = Arc::new(self.build(spec, bytes, None)?);
        let name = plugin.name().to_owned();
        let mut plugins = self.write();
        if plugins.contains_key(&name) {
            return Err(PluginError::Duplicate { plugin: name });
        }
        plugins.insert(name.clone(), Slot { plugin, enabled });
        drop(plugins);
        tracing::info!(plugin = %name, "plugin loaded");
        self.inspect(&name)
    }

    /// Replaces a loaded plugin with a new spec and component. Calls in
    /// flight finish on the old instances; calls that start after the swap
    /// use the new ones. Metrics carry over; the circuit breaker resets.
    pub fn reload(
        &self,
        name: &str,
        spec: PluginSpec,
        bytes: &[u8],
    ) -> Result<PluginInfo, PluginError> {
        if spec.name != name {
            return Err(PluginError::Config {
                plugin: name.to_owned(),
                message: format!("reload of {name} was given a spec named {}", spec.name),
            });
        }
        let metrics = self
            .read()
            .get(name)
            .map(|s| Arc::clone(&s.plugin.metrics))
            .ok_or_else(|| PluginError::NotFound {
                plugin: name.to_owned(),
            })?;
        let enabled = spec.enabled;
        let plugin = Arc::new(self.build(spec, bytes, Some(metrics))?);
        let mut plugins = self.write();
        match plugins.get_mut(name) {
            Some(slot) => {
                slot.plugin = plugin;
                slot.enabled = enabled;
            }
            None => {
                return Err(PluginError::NotFound {
                    plugin: name.to_owned(),
                });
            }
        }
        drop(plugins);
        tracing::info!(plugin = %name, "plugin reloaded");
        self.inspect(name)
    }

    /// Unloads a plugin. Calls in flight finish.
    pub fn remove(&self, name: &str) -> Result<(), PluginError> {
        self.write()
            .remove(name)
            .map(|_| tracing::info!(plugin = %name, "plugin removed"))
            .ok_or_else(|| PluginError::NotFound {
                plugin: name.to_owned(),
            })
    }

    pub fn enable(&self, name: &str) -> Result<(), PluginError> {
        self.set_enabled(name, true)
    }

    pub fn disable(&self, name: &str) -> Result<(), PluginError> {
        self.set_enabled(name, false)
    }

    /// Every plugin, by name.
    pub fn list(&self) -> Vec<PluginInfo> {
        self.read().values().map(info).collect()
    }

    pub fn inspect(&self, name: &str) -> Result<PluginInfo, PluginError> {
        self.read()
            .get(name)
            .map(info)
            .ok_or_else(|| PluginError::NotFound {
                plugin: name.to_owned(),
            })
    }

    /// Every plugin's metrics in Prometheus text format, for `/metrics`.
    pub fn render_prometheus(&self, out: &mut String) {
        crate::metrics::render_header(out);
        for slot in self.read().values() {
            slot.plugin
                .metrics
                .render(slot.plugin.name(), slot.plugin.kind().as_str(), out);
        }
    }

    /// The enabled plugins of `kind`, by (`order`, name).
    pub(crate) fn enabled_of(&self, kind: Kind) -> Vec<Arc<Plugin>> {
        let mut out: Vec<Arc<Plugin>> = self
            .read()
            .values()
            .filter(|s| s.enabled && s.plugin.kind() == kind)
            .map(|s| Arc::clone(&s.plugin))
            .collect();
        out.sort_by(|a, b| (a.spec.order, a.name()).cmp(&(b.spec.order, b.name())));
        out
    }

    /// The current plugin of that name, if enabled and of that kind.
    pub(crate) fn get(&self, name: &str, kind: Kind) -> Result<Arc<Plugin>, PluginError> {
        let plugins = self.read();
        let slot = plugins.get(name).ok_or_else(|| PluginError::NotFound {
            plugin: name.to_owned(),
        })?;
        if slot.plugin.kind() != kind {
            return Err(PluginError::WrongKind {
                plugin: name.to_owned(),
                expected: kind.as_str(),
                message: format!("it is a {}", slot.plugin.kind()),
            });
        }
        if !slot.enabled {
            return Err(PluginError::Disabled {
                plugin: name.to_owned(),
            });
        }
        Ok(Arc::clone(&slot.plugin))
    }

    fn build(
        &self,
        spec: PluginSpec,
        bytes: &[u8],
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Plugin, PluginError> {
        let options = &self.inner.options;
        Plugin::load(
            spec,
            bytes,
            &options.cache_dir,
            metrics.unwrap_or_default(),
            Arc::new(Breaker::new(
                options.breaker_threshold,
                options.breaker_cool_off,
            )),
        )
    }

    fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), PluginError> {
        let mut plugins = self.write();
        let slot = plugins.get_mut(name).ok_or_else(|| PluginError::NotFound {
            plugin: name.to_owned(),
        })?;
        slot.enabled = enabled;
        tracing::info!(plugin = %name, enabled, "plugin state changed");
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Slot>> {
        self.inner.plugins.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Slot>> {
        self.inner
            .plugins
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn info(slot: &Slot) -> PluginInfo {
    let p = &slot.plugin;
    let stuck_calls = p.stuck();
    let state = match (slot.enabled, p.breaker.cut_off_until()) {
        (false, _) => PluginState::Disabled,
        (true, Some(until)) => PluginState::CutOff { until },
        (true, None) if stuck_calls >= crate::plugin::MAX_STUCK => {
            PluginState::Stuck { calls: stuck_calls }
        }
        (true, None) => PluginState::Enabled,
    };
    PluginInfo {
        name: p.name().to_owned(),
        kind: p.kind(),
        digest: p.digest.clone(),
        state,
        cache: p.cache,
        subscriptions: p.subscriptions.clone(),
        first_edition: p.first_edition(),
        stuck_calls,
        spec: p.spec.clone(),
        metrics: p.metrics.snapshot(),
    }
}
