//! Builds the guest components with a child cargo, for wasm32-wasip2, in release mode, into
//! `<target>/plugins`, and writes `artifacts.rs` with one path constant per component.
//!
//! The child must not inherit this build's flags: `RUSTFLAGS` meant for x86_64 (or
//! `-C instrument-coverage`, or clippy's workspace wrapper) would break or slow the wasm
//! build, and `CARGO_TARGET_DIR` would mix the two workspaces' outputs.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "build/support.rs"]
mod support;

use support::{TARGET, check_target_installed, dep_sources, inherit};

/// The cargo workspaces whose components this crate exports.
const WORKSPACES: &[&str] = &["plugins", "examples/policy-template"];

/// The components (crate names) those workspaces build. Listed, not discovered, so a
/// component that stops building is an error here rather than a stale file silently used.
const COMPONENTS: &[&str] = &[
    "allowed-registries",
    "default-limits",
    "deny-root",
    "dir-storage",
    "htpasswd-rbac",
    "pkg-inventory",
    "policy-template",
    "fixture-auth-panic",
    "fixture-auth-sleep",
    "fixture-big-deny",
    "fixture-echo",
    "fixture-fifo",
    "fixture-membomb",
    "fixture-old-hook",
    "fixture-open-socket",
    "fixture-panic",
    "fixture-read-passwd",
    "fixture-sleep",
    "fixture-spin",
];

fn main() {
    if let Err(message) = run() {
        // A build script reports failure by panicking; the message is what the user sees.
        #[allow(clippy::panic, reason = "a build script fails by panicking")]
        {
            panic!("\n\nberth-plugin-artifacts: {message}\n\n");
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let repo = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("CARGO_MANIFEST_DIR has no grandparent")?
        .to_path_buf();
    let target_dir = target_dir(&repo).join("plugins");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    check_target_installed(&rustc)?;

    for workspace in WORKSPACES {
        let dir = repo.join(workspace);
        println!(
            "cargo::rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        println!(
            "cargo::rerun-if-changed={}",
            dir.join("Cargo.lock").display()
        );
        build(&cargo, &dir, &target_dir)?;
    }
    // A new WIT file changes what the SDK generates even before any .d file names it.
    println!("cargo::rerun-if-changed={}", repo.join("wit").display());

    let release = target_dir.join(TARGET).join("release");
    let artifacts = collect(&release)?;
    let mut source = String::new();
    for (name, path) in &artifacts {
        let constant = name.to_uppercase().replace('-', "_");
        writeln!(
            source,
            "/// `{name}`: the release component at `{path}`.\npub const {constant}: &str = {path:?};",
            path = path.display()
        )
        .map_err(|e| e.to_string())?;
    }
    source.push_str(
        "\n/// Every component: (crate name, path).\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for (name, _) in &artifacts {
        let constant = name.to_uppercase().replace('-', "_");
        writeln!(source, "    ({name:?}, {constant}),").map_err(|e| e.to_string())?;
    }
    source.push_str("];\n");
    let out = PathBuf::from(env_var("OUT_DIR")?).join("artifacts.rs");
    fs::write(&out, source).map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(())
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("{name} is not set (is this run by cargo?)"))
}

/// The root workspace's target dir: `CARGO_TARGET_DIR` when the user set one, else
/// `<repo>/target`.
fn target_dir(repo: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => repo.join(dir),
        None => repo.join("target"),
    }
}

fn build(cargo: &str, workspace: &Path, target_dir: &Path) -> Result<(), String> {
    let manifest = workspace.join("Cargo.toml");
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // Run from the workspace so its own .cargo/config.toml applies, not the caller's.
        .current_dir(workspace)
        .env_clear()
        .envs(env::vars_os().filter(|(k, _)| k.to_str().is_some_and(inherit)))
        // Build-script stdout is cargo's instruction channel: keep the child off it.
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let output = command
        .output()
        .map_err(|e| format!("running `{cargo} build` for {}: {e}", manifest.display()))?;
    if !output.status.success() {
        return Err(format!(
            "building the guest components of {} for {TARGET} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// The built components (crate name, path), in [`COMPONENTS`] order, with their sources
/// registered for `rerun-if-changed` from cargo's `.d` dep-info files.
fn collect(release: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut artifacts = Vec::new();
    for name in COMPONENTS {
        let path = release.join(format!("{}.wasm", name.replace('-', "_")));
        if !path.is_file() {
            return Err(format!(
                "the build did not produce {}: is crate `{name}` still a workspace member?",
                path.display()
            ));
        }
        let dep_info = path.with_extension("d");
        let text = fs::read_to_string(&dep_info)
            .map_err(|e| format!("reading {}: {e}", dep_info.display()))?;
        for source in dep_sources(&text) {
            println!("cargo::rerun-if-changed={source}");
        }
        artifacts.push(((*name).to_owned(), path));
    }
    Ok(artifacts)
}
