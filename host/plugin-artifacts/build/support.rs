//! The build script's decisions that can be tested on their own: is the wasm target
//! installed, which environment variables the child cargo inherits, and what a dep-info file
//! lists. Included by `build.rs` and by `tests/build_support.rs`.

use std::path::Path;
use std::process::Command;

/// The target the guest components are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Fails early, with the fix, when the toolchain has no wasm32-wasip2 standard library:
/// otherwise the child's error ("can't find crate for `core`") buries the cause.
pub fn check_target_installed(rustc: &str) -> Result<(), String> {
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running `{rustc} --print sysroot`: {e}"))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if !output.status.success() || !lib.is_dir() {
        return Err(format!(
            "the {TARGET} target is not installed for this toolchain ({sysroot}): run \
             `rustup target add {TARGET}`, then build again"
        ));
    }
    Ok(())
}

/// Whether the child cargo should inherit `name`. Cargo's per-build variables (`CARGO_PKG_*`,
/// `CARGO_CFG_*`, `TARGET`, `PROFILE`, ...) describe this crate, not the plugins; the few
/// kept are about where cargo finds things and how it reaches registries and the jobserver.
pub fn inherit(name: &str) -> bool {
    const KEEP: &[&str] = &["CARGO_HOME", "CARGO_MAKEFLAGS", "CARGO_TERM_COLOR"];
    const KEEP_PREFIXES: &[&str] = &[
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
    ];
    const DROP: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "LLVM_PROFILE_FILE",
    ];
    if KEEP.contains(&name) || KEEP_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    !(name.starts_with("CARGO_") || name.starts_with("__CARGO") || DROP.contains(&name))
}

/// The prerequisites of a make-style dep-info file (`out: a.rs b.rs`, spaces escaped `\ `).
pub fn dep_sources(text: &str) -> Vec<String> {
    let Some((_, deps)) = text.lines().next().and_then(|line| line.split_once(": ")) else {
        return Vec::new();
    };
    let mut sources = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => {
                if !current.is_empty() {
                    sources.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        sources.push(current);
    }
    sources
}
