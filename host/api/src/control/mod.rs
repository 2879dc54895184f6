//! The control plane, `/v1/...`: JSON over HTTP on the daemon's unix
//! socket. Long operations (pull, push) answer with a stream of
//! newline-delimited JSON events, the last of which is the result.

mod archives;
pub mod containers;
mod errors;
mod images;
mod inspect;
mod networks;
pub mod openapi;
pub mod plugins;
mod progress;
pub mod tcp;
mod users;
mod volumes;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use berth_auth::AuthService;
use berth_client::ClientConfig;
use berth_registry::Registry;

pub use berth_engine::policy;
pub use errors::ControlError;
pub use progress::Event;

/// What the control plane needs.
///
/// Image handlers call [`ControlApp::engine`]. The container handlers still
/// use the fields below it directly; they are the engine's own handles
/// (the same stores and hook chain), until containers move into the engine.
pub struct ControlApp {
    /// The engine: the image service and the hooks in force.
    pub engine: Arc<berth_engine::Engine>,
    pub registry: Registry,
    pub auth: Arc<AuthService>,
    /// Template for the registry clients of pulls and pushes.
    pub client: ClientConfig,
    pub root: std::path::PathBuf,
    /// Unpacks pulled, loaded and imported images into snapshots.
    pub unpacker: berth_unpack::Unpacker,
    /// Container networks.
    pub networks: berth_network::Networks,
    /// The `berth-shim` executable started for each container.
    pub shim: std::path::PathBuf,
    /// Proxies of published ports.
    pub ports: containers::Ports,
    /// Lifecycle hooks in force.
    pub policy: Arc<policy::Policy>,
    /// Loaded Wasm plugins.
    pub plugins: berth_plugins::PluginManager,
    /// Log rotation of containers that set none (`[containers]` in the config).
    pub container_logs: berth_runtime::shim_files::LogOptions,
    /// Health checkers of running containers, and their events.
    pub health: containers::HealthMonitors,
    /// Clients attached to containers not started yet.
    pub attaches: containers::Attaches,
}

pub(crate) type Shared = axum::extract::State<Arc<ControlApp>>;

/// `fn app(state) -> Router` for the control plane.
pub fn app(state: Arc<ControlApp>) -> Router {
    Router::new()
        .route("/v1/info", get(images::info))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/images", get(images::list).delete(images::remove))
        .route("/v1/images/pull", post(images::pull))
        .route("/v1/images/push", post(images::push))
        .route("/v1/images/tag", post(images::tag))
        .route("/v1/images/inspect", get(inspect::inspect))
        .route("/v1/images/history", get(inspect::history))
        .route("/v1/images/mount", post(inspect::mount))
        .route("/v1/images/unmount", post(inspect::unmount))
        .route("/v1/images/prune", post(images::prune))
        .route("/v1/images/save", get(archives::save))
        .route("/v1/images/load", post(archives::load))
        .route("/v1/images/import", post(archives::import))
        .route("/v1/registry/users", get(users::list).post(users::add))
        .route("/v1/registry/users/{name}", delete(users::remove))
        .route("/v1/registry/gc", post(users::gc))
        .route(
            "/v1/containers",
            get(containers::list).post(containers::run),
        )
        .route(
            "/v1/containers/{id}",
            get(containers::inspect).delete(containers::remove),
        )
        .route("/v1/containers/{id}/logs", get(containers::logs))
        .route("/v1/containers/{id}/wait", post(containers::wait))
        .route("/v1/containers/{id}/kill", post(containers::kill))
        .route("/v1/containers/{id}/stop", post(containers::stop))
        .route("/v1/containers/{id}/start", post(containers::start))
        .route("/v1/containers/{id}/attach", post(containers::attach))
        .route("/v1/containers/{id}/resize", post(containers::resize))
        .route("/v1/containers/{id}/restart", post(containers::restart))
        .route("/v1/containers/{id}/pause", post(containers::pause))
        .route("/v1/containers/{id}/unpause", post(containers::unpause))
        .route("/v1/containers/{id}/stats", get(containers::stats))
        .route("/v1/containers/{id}/exec", post(containers::exec))
        .route("/v1/containers/{id}/update", post(containers::update))
        .route("/v1/containers/{id}/top", get(containers::top))
        .route(
            "/v1/containers/{id}/archive",
            get(containers::get_archive).put(containers::put_archive),
        )
        .route("/v1/volumes", get(volumes::list).post(volumes::create))
        .route("/v1/volumes/prune", post(volumes::prune))
        .route(
            "/v1/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/v1/networks", get(networks::list).post(networks::create))
        .route(
            "/v1/networks/{name}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/v1/plugins", get(plugins::list).post(plugins::install))
        .route("/v1/plugins/push", post(plugins::push))
        .route(
            "/v1/plugins/{name}",
            get(plugins::inspect).delete(plugins::remove),
        )
        .route("/v1/plugins/{name}/enable", post(plugins::enable))
        .route("/v1/plugins/{name}/disable", post(plugins::disable))
        .route("/v1/plugins/{name}/reload", post(plugins::reload))
        .route("/v1/images/scan", post(plugins::scan::scan))
        .route("/v1/scans/{digest}", get(plugins::scan_on_push::get))
        .route("/metrics", get(plugins::metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}
