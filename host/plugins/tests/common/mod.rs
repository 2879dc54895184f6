//! Shared by the test binaries: one compile cache for every test (debug
//! wasmtime takes seconds per component; a cache hit takes a millisecond),
//! and small helpers.

#![allow(dead_code, reason = "each test binary uses a part of this")]

use std::path::PathBuf;
use std::time::Duration;

use berth_plugins::{Kind, ManagerOptions, PluginManager, PluginSpec};
use berth_policy::{ContainerSpec, Event};

/// Persistent across runs (under target/), keyed by component bytes, so an
/// unchanged plugin is compiled once.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-plugin-cache")
}

pub fn manager() -> PluginManager {
    PluginManager::new(ManagerOptions::new(cache_dir()))
}

pub fn manager_with_breaker(threshold: u32, cool_off: Duration) -> PluginManager {
    let mut options = ManagerOptions::new(cache_dir());
    options.breaker_threshold = threshold;
    options.breaker_cool_off = cool_off;
    PluginManager::new(options)
}

pub fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub fn spec(name: &str, kind: Kind, path: &str) -> PluginSpec {
    PluginSpec::new(name, kind, path)
}

/// Loads `path` as `name` with `spec`'s defaults changed by `edit`.
pub fn load(
    manager: &PluginManager,
    name: &str,
    kind: Kind,
    path: &str,
    edit: impl FnOnce(&mut PluginSpec),
) {
    let mut s = spec(name, kind, path);
    edit(&mut s);
    manager
        .load(s, &bytes(path))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
}

pub fn pre_create(uid: u32, labels: &[(&str, &str)]) -> Event {
    Event::PreCreate(ContainerSpec {
        name: "web".into(),
        image: "docker.io/library/busybox:latest".into(),
        uid,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ContainerSpec::default()
    })
}
