//! Where a plugin's component comes from: a `.wasm` path, or an OCI
//! artifact pinned by digest in any registry (berth's own included). And
//! where an installed plugin is kept so it comes back after a restart.

use std::path::{Path, PathBuf};

use berth_client::{ClientConfig, RegistryClient, Repository};
use berth_oci::Reference;
use berth_plugins::PluginSpec;
use serde::{Deserialize, Serialize};

use crate::control::ControlError;

/// Components are small; refuse anything that is clearly not a plugin.
const MAX_COMPONENT: u64 = 64 * 1024 * 1024;

/// Whether `source` names an OCI artifact rather than a file (files are
/// given by absolute path).
pub fn is_oci(source: &str) -> bool {
    !source.starts_with('/')
}

/// The component bytes of `source`. OCI references must be pinned by
/// digest: a tag could change under a running policy.
pub async fn fetch(source: &str, client: &ClientConfig) -> Result<Vec<u8>, ControlError> {
    if !is_oci(source) {
        let path = PathBuf::from(source);
        return tokio::fs::read(&path).await.map_err(|e| {
            ControlError::bad_request(format!(
                "reading plugin component {}: {e}; give an absolute path to a .wasm file or \
                 an OCI reference pinned by digest (host/repo@sha256:...)",
                path.display()
            ))
        });
    }
    let reference: Reference = source.parse().map_err(|e| {
        ControlError::bad_request(format!("plugin source {source:?} is not a reference: {e}"))
    })?;
    let digest = reference.digest.clone().ok_or_else(|| {
        ControlError::bad_request(format!(
            "plugin source {source} must be pinned by digest (…@sha256:…), not a tag"
        ))
    })?;
    let client = RegistryClient::new(client.clone()).map_err(ControlError::internal)?;
    let repo = Repository::new(reference.api_host(), &reference.repository)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    let artifact = client
        .pull_wasm_artifact(&repo, &digest.to_string(), MAX_COMPONENT)
        .await
        .map_err(|e| {
            ControlError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "plugin_fetch_failed",
                format!("fetching plugin {source}: {e}"),
            )
        })?;
    Ok(artifact.bytes.to_vec())
}

/// A plugin installed through the API, remembered across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Installed {
    pub spec: PluginSpec,
    /// `sha256:…` of the component kept under `ROOT/plugins/components`.
    pub digest: String,
}

/// Create `dir` (and missing parents) readable by berthd alone, whatever
/// the umask: under `ROOT/plugins` are components berthd runs and image
/// file systems unpacked for scanners (setuid files included).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

pub fn component_path(root: &Path, digest: &str) -> PathBuf {
    root.join("plugins")
        .join("components")
        .join(format!("{}.wasm", digest.replace(':', "-")))
}

/// Keeps the component on disk (temp file, fsync, rename).
pub fn keep_component(root: &Path, digest: &str, bytes: &[u8]) -> Result<(), ControlError> {
    use std::io::Write;
    let path = component_path(root, digest);
    let dir = path
        .parent()
        .ok_or_else(|| ControlError::internal("component path has no parent"))?;
    create_private_dir(dir)
        .map_err(|e| ControlError::internal(format!("creating {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ControlError::internal(format!("storing plugin component {}: {e}", path.display()))
    })
}
