//! The `[[plugin]]` entries of `berth.toml`, loaded before anything that
//! may depend on them (the storage backend sits under the content store).

use std::path::Path;

use anyhow::Context;
use berth_api::control::plugins::sources;
use berth_client::ClientConfig;
use berth_plugins::{Kind, ManagerOptions, PluginManager, PluginSpec};

pub async fn load_configured(
    root: &Path,
    specs: &[PluginSpec],
    client: &ClientConfig,
) -> anyhow::Result<PluginManager> {
    let manager = PluginManager::new(ManagerOptions::new(root.join("plugins").join("cache")));
    for spec in specs {
        let bytes = sources::fetch(&spec.source, client)
            .await
            .map_err(|e| anyhow::anyhow!("plugin {}: {e}", spec.name))?;
        let m = manager.clone();
        let s = spec.clone();
        let info = tokio::task::spawn_blocking(move || m.load(s, &bytes))
            .await?
            .with_context(|| format!("loading plugin {}", spec.name))?;
        tracing::info!(plugin = %info.name, kind = %info.kind.as_str(), digest = %info.digest, "plugin loaded");
    }
    Ok(manager)
}

pub fn has_auth(specs: &[PluginSpec]) -> bool {
    specs
        .iter()
        .any(|s| s.kind == Kind::AuthProvider && s.enabled)
}
