//! Where the berth binaries are, built once per test process.
//!
//! `cargo test --workspace` does not necessarily build `berthd` and `berth` as plain
//! binaries (only as their unit-test harnesses), and a binary left in `target/` by an older
//! build would test old code; so the first caller runs `cargo build -p berth -p berth-shim --bins`, which
//! is a no-op when they are fresh. `BERTH_BIN_DIR=DIR` uses binaries from DIR instead and
//! builds nothing (the benchmark and CI of a release build use that).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding `berthd` and `berth`, after making sure they are built.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| locate_and_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Path of the `berthd` binary.
pub fn berthd() -> anyhow::Result<PathBuf> {
    Ok(bin_dir()?.join("berthd"))
}

/// Path of the `berth` CLI binary.
pub fn berth() -> anyhow::Result<PathBuf> {
    Ok(bin_dir()?.join("berth"))
}

/// The cargo target directory this workspace builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                crate::workspace_root().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

fn locate_and_build() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BERTH_BIN_DIR") {
        let dir = PathBuf::from(dir);
        for name in ["berthd", "berth", "berth-shim"] {
            if !dir.join(name).is_file() {
                anyhow::bail!("BERTH_BIN_DIR={} has no {name} binary", dir.display());
            }
        }
        return Ok(dir);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "-p", "berth", "-p", "berth-shim", "--bins"])
        .current_dir(crate::workspace_root())
        .status()
        .map_err(|e| anyhow::anyhow!("running cargo build -p berth -p berth-shim --bins: {e}"))?;
    if !status.success() {
        anyhow::bail!(
            "cargo build -p berth -p berth-shim --bins failed ({status}); the e2e tests need berthd, berth and berth-shim"
        );
    }
    let dir = target_dir().join("debug");
    for name in ["berthd", "berth", "berth-shim"] {
        if !dir.join(name).is_file() {
            anyhow::bail!(
                "cargo build -p berth -p berth-shim --bins left no {} in {}",
                name,
                dir.display()
            );
        }
    }
    Ok(dir)
}
