//! Reading and writing the shim's files in the container directory.

use std::path::Path;

use anyhow::Context;
use berth_runtime::shim_files::{
    ExitRecord, RESTART_STATE, RestartState, ShimConfig, write_atomic, write_atomic_unsynced,
};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds on the monotonic clock, which an exec does not reset.
pub fn monotonic_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

pub fn config(dir: &Path) -> anyhow::Result<ShimConfig> {
    serde_json::from_slice(&std::fs::read(dir.join("shim.json")).context("reading shim.json")?)
        .context("parsing shim.json")
}

pub fn save_restarts(dir: &Path, state: &RestartState) -> anyhow::Result<()> {
    write_atomic(&dir.join(RESTART_STATE), &serde_json::to_vec(state)?)
        .context("writing restart.json")
}

/// The last act of a shim: how the container ended. Durable, unless the
/// container is `--rm` (`disposable`): then the daemon removes it on
/// reading this, or at start-up after a power cut whatever the file says.
pub fn finish(dir: &Path, exit: &ExitRecord, disposable: bool) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(exit)?;
    let path = dir.join("exit.json");
    match disposable {
        true => write_atomic_unsynced(&path, &bytes),
        false => write_atomic(&path, &bytes),
    }
    .context("writing exit.json")
}

pub fn failed(code: i32, error: String) -> ExitRecord {
    ExitRecord {
        code,
        oom_killed: false,
        finished_at: now(),
        error: Some(error),
    }
}
