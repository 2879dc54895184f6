//! `/v1/plugins`: Wasm plugins. The install body and the plugin record are
//! the plugin host's own `PluginSpec` and `PluginInfo` (the same shape as
//! `[[plugins]]` in `berth.toml`); only the small answers live here.

use serde::{Deserialize, Serialize};

/// `POST /v1/plugins/push?reference=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct PluginPushQuery {
    /// `host/repo:tag` to push the component to.
    pub reference: String,
}

/// The answer to a plugin push: the reference to pin in a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginPushResponse {
    pub reference: String,
    pub digest: String,
    /// `host/repo@sha256:...`.
    pub pinned: String,
}

/// `DELETE /v1/plugins/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginRemoved {
    pub removed: String,
}
