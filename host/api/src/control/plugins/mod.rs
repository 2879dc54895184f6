//! `/v1/plugins`: install, list, inspect, enable, disable, reload and remove
//! Wasm plugins while the daemon serves; push a component to a registry as
//! an OCI artifact; `/metrics`. After every change the hooks and the auth
//! chain in force are rebuilt ([`rewire`]), so the next request sees it and
//! requests in flight finish with what they started with.

pub mod scan;
pub mod scan_on_push;
pub mod sources;
pub mod wire;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_plugins::{Kind, PluginError, PluginManager, PluginSpec};

use crate::control::{ControlApp, ControlError, Shared};
use sources::Installed;

/// Puts the manager's enabled plugins in force: the hook chain, and the
/// auth chain when any auth plugin is enabled. Then the plugins alone judge
/// passwords and permissions: berth's own users would deny every user they
/// do not know, and a deny wins in the chain. With no auth plugin the
/// native users are the provider, as before.
pub fn rewire(app: &ControlApp) {
    app.policy.set(app.plugins.hook_chain());
    let chain = app.plugins.auth_chain(None);
    if chain.is_empty() {
        app.auth.set_provider(None);
    } else {
        app.auth.set_provider(Some(Arc::new(chain)));
    }
}

fn plugin_err(e: PluginError) -> ControlError {
    let status = match &e {
        PluginError::NotFound { .. } => StatusCode::NOT_FOUND,
        PluginError::Duplicate { .. } => StatusCode::CONFLICT,
        PluginError::Load { .. } | PluginError::Config { .. } | PluginError::WrongKind { .. } => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ControlError::new(status, "plugin_error", e.to_string())
}

fn installed_tree(app: &ControlApp) -> Result<berth_state::JsonTree, ControlError> {
    Ok(app.registry.state().json_tree("plugins")?)
}

/// Loads the plugins installed through the API (at start-up).
pub fn load_installed(app: &ControlApp) -> Result<(), ControlError> {
    for (name, installed) in installed_tree(app)?.list::<Installed>()? {
        let path = sources::component_path(&app.root, &installed.digest);
        let bytes = std::fs::read(&path).map_err(|e| {
            ControlError::internal(format!(
                "plugin {name}: reading its component {}: {e}; `berth plugin rm {name}` and install it again",
                path.display()
            ))
        })?;
        app.plugins
            .load(installed.spec, &bytes)
            .map_err(plugin_err)?;
    }
    Ok(())
}

pub(crate) async fn list(State(app): Shared) -> impl IntoResponse {
    axum::Json(
        app.plugins
            .list()
            .into_iter()
            .map(wire::info)
            .collect::<Vec<_>>(),
    )
}

pub(crate) async fn inspect(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    Ok(axum::Json(wire::info(
        app.plugins.inspect(&name).map_err(plugin_err)?,
    )))
}

/// Compiling a component takes a while: off the async workers.
async fn blocking<T: Send + 'static>(
    app: &Arc<ControlApp>,
    f: impl FnOnce(&PluginManager) -> Result<T, PluginError> + Send + 'static,
) -> Result<T, ControlError> {
    let manager = app.plugins.clone();
    tokio::task::spawn_blocking(move || f(&manager))
        .await
        .map_err(ControlError::internal)?
        .map_err(plugin_err)
}

pub(crate) async fn install(
    State(app): Shared,
    axum::Json(spec): axum::Json<PluginSpec>,
) -> Result<impl IntoResponse, ControlError> {
    let bytes = sources::fetch(&spec.source, &app.client).await?;
    let digest = berth_plugins::digest_of(&bytes);
    let loaded = {
        let (spec, bytes) = (spec.clone(), bytes.clone());
        blocking(&app, move |m| m.load(spec, &bytes)).await?
    };
    let keep = sources::keep_component(&app.root, &digest, &bytes).and_then(|()| {
        installed_tree(&app)?.put(
            &spec.name,
            &Installed {
                spec: spec.clone(),
                digest: digest.clone(),
            },
        )?;
        Ok(())
    });
    if let Err(e) = keep {
        let _ = app.plugins.remove(&spec.name);
        return Err(e);
    }
    rewire(&app);
    tracing::info!(plugin = %spec.name, kind = %spec.kind.as_str(), %digest, "plugin installed");
    Ok((StatusCode::CREATED, axum::Json(wire::info(loaded))))
}

pub(crate) async fn enable(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    app.plugins.enable(&name).map_err(plugin_err)?;
    set_enabled(&app, &name, true)?;
    rewire(&app);
    Ok(axum::Json(wire::info(
        app.plugins.inspect(&name).map_err(plugin_err)?,
    )))
}

pub(crate) async fn disable(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    app.plugins.disable(&name).map_err(plugin_err)?;
    set_enabled(&app, &name, false)?;
    rewire(&app);
    Ok(axum::Json(wire::info(
        app.plugins.inspect(&name).map_err(plugin_err)?,
    )))
}

fn set_enabled(app: &ControlApp, name: &str, enabled: bool) -> Result<(), ControlError> {
    let tree = installed_tree(app)?;
    if let Some(mut i) = tree.get::<Installed>(name)? {
        i.spec.enabled = enabled;
        tree.put(name, &i)?;
    }
    Ok(())
}

/// `POST /v1/plugins/{name}/reload`: the same spec (its source fetched
/// again) or a new one in the body; swapped without dropping calls.
pub(crate) async fn reload(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let spec: PluginSpec = if body.is_empty() {
        app.plugins.inspect(&name).map_err(plugin_err)?.spec
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ControlError::bad_request(format!("plugin spec: {e}")))?
    };
    if spec.name != name {
        return Err(ControlError::bad_request(format!(
            "the spec names {:?}, not {name:?}",
            spec.name
        )));
    }
    let bytes = sources::fetch(&spec.source, &app.client).await?;
    let digest = berth_plugins::digest_of(&bytes);
    let info = {
        let (spec, bytes, name) = (spec.clone(), bytes.clone(), name.clone());
        blocking(&app, move |m| m.reload(&name, spec, &bytes)).await?
    };
    if installed_tree(&app)?.get::<Installed>(&name)?.is_some() {
        sources::keep_component(&app.root, &digest, &bytes)?;
        installed_tree(&app)?.put(&name, &Installed { spec, digest })?;
    }
    rewire(&app);
    Ok(axum::Json(wire::info(info)))
}

pub(crate) async fn remove(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let info = app.plugins.inspect(&name).map_err(plugin_err)?;
    if info.kind == Kind::StorageBackend {
        return Err(ControlError::new(
            StatusCode::CONFLICT,
            "plugin_in_use",
            format!(
                "{name} is a storage backend in use by the registry; change berth.toml and restart instead"
            ),
        ));
    }
    app.plugins.remove(&name).map_err(plugin_err)?;
    installed_tree(&app)?.remove(&name)?;
    rewire(&app);
    Ok(axum::Json(berth_api_types::PluginRemoved { removed: name }))
}

pub use berth_api_types::PluginPushQuery as PushQuery;

/// `POST /v1/plugins/push?reference=…` with the component as the body:
/// pushes it as an OCI artifact; answers with the pinned reference.
pub(crate) async fn push(
    State(app): Shared,
    Query(q): Query<PushQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let reference: berth_oci::Reference = q
        .reference
        .parse()
        .map_err(|e| ControlError::bad_request(format!("{}: {e}", q.reference)))?;
    let client =
        berth_client::RegistryClient::new(app.client.clone()).map_err(ControlError::internal)?;
    let repo = berth_client::Repository::new(reference.api_host(), &reference.repository)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let digest = client
        .push_wasm_artifact(&repo, &tag, body)
        .await
        .map_err(|e| ControlError::new(StatusCode::BAD_GATEWAY, "push_failed", e.to_string()))?;
    Ok(axum::Json(berth_api_types::PluginPushResponse {
        reference: format!("{}/{}:{tag}", reference.registry, reference.repository),
        digest: digest.to_string(),
        pinned: format!("{}/{}@{digest}", reference.registry, reference.repository),
    }))
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(app): Shared) -> impl IntoResponse {
    let mut out = String::new();
    app.plugins.render_prometheus(&mut out);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
}
