//! Components compiled once and kept on disk, keyed by what makes an
//! artifact valid: the component's bytes, the wasmtime version and the
//! engine's settings.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::PluginError;

/// How a component was obtained, for logs, `inspect` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Compiled now and written to the cache.
    Compiled,
    /// Loaded from a precompiled artifact.
    Hit,
}

/// Returns the compiled component and whether it came from the cache.
pub(crate) fn load(
    engine: &Engine,
    cache_dir: &Path,
    plugin: &str,
    bytes: &[u8],
) -> Result<(Component, CacheOutcome), PluginError> {
    let key = key(engine, bytes);
    let path = cache_dir.join(format!("{key}.cwasm"));
    check_private(cache_dir).map_err(|message| PluginError::Load {
        plugin: plugin.to_owned(),
        message,
    })?;
    if path.exists() {
        let start = Instant::now();
        // SAFETY: deserialize_file trusts the file to be a valid artifact
        // for this engine. Only this module writes into the cache
        // directory (temp file, fsync, rename: never a partial file), and
        // the file name is the hash of the component bytes, the wasmtime
        // version and the engine settings, so a file under this name was
        // produced by `precompile_component` for exactly this engine. The
        // cache directory must be writable only by berthd (root).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                tracing::debug!(plugin, key, elapsed = ?start.elapsed(), "plugin loaded from the compile cache");
                return Ok((component, CacheOutcome::Hit));
            }
            Err(e) => {
                tracing::warn!(plugin, path = %path.display(), error = %e, "unusable cached artifact; compiling again");
            }
        }
    }
    let start = Instant::now();
    let artifact = engine
        .precompile_component(bytes)
        .map_err(|e| PluginError::Load {
            plugin: plugin.to_owned(),
            message: format!("not a valid component: {e:#}"),
        })?;
    tracing::info!(plugin, key, elapsed = ?start.elapsed(), "plugin compiled");
    write_atomically(cache_dir, &path, &artifact).map_err(|e| PluginError::Load {
        plugin: plugin.to_owned(),
        message: format!(
            "writing the compiled plugin to {}: {e}; check that the cache directory is writable",
            path.display()
        ),
    })?;
    // SAFETY: as above; the artifact was produced by this engine just now.
    let component =
        unsafe { Component::deserialize(engine, &artifact) }.map_err(|e| PluginError::Load {
            plugin: plugin.to_owned(),
            message: format!("loading the compiled plugin: {e:#}"),
        })?;
    Ok((component, CacheOutcome::Compiled))
}

/// `sha256(bytes) + wasmtime version + engine settings`, hashed together.
pub(crate) fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(Sha256::digest(bytes));
    h.update(b"\0wasmtime-48.0.8\0");
    h.update(crate::engine::settings_fingerprint().as_bytes());
    std::hash::Hash::hash(
        &engine.precompile_compatibility_hash(),
        &mut ShaHasher(&mut h),
    );
    hex::encode(h.finalize())
}

/// The sha256 of a component, as `sha256:HEX`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Feeds `Hash` output into sha256, so the key does not depend on
/// `DefaultHasher`'s unstable algorithm.
struct ShaHasher<'a>(&'a mut Sha256);

impl std::hash::Hasher for ShaHasher<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Loading a precompiled artifact runs its code: refuse a cache directory
/// others may write to.
fn check_private(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating the compile cache {}: {e}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| format!("reading the compile cache {}: {e}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "the compile cache {} is writable by others (mode {:o}); make it writable only by berthd (chmod 700)",
            dir.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

fn write_atomically(dir: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp: PathBuf = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
