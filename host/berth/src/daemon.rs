//! `berthd`: opens the store, the state and the services under `--root`,
//! serves the registry on `--registry-listen` and the control plane on
//! `--socket`, until SIGTERM or SIGINT.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_api::{control, registry};
use berth_auth::{AuthConfig, AuthService};
use berth_client::ClientConfig;
use berth_content::ContentStore;
use berth_registry::{Registry, RegistryConfig};
use berth_state::State;
use clap::Parser;
use tokio::net::{TcpListener, UnixListener};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "The berth daemon: registry, image store and control plane"
)]
pub struct Args {
    /// Where blobs, state and uploads live.
    #[arg(long, default_value = "/var/lib/berth")]
    pub root: PathBuf,
    /// The control plane's unix socket.
    #[arg(long, default_value = "/run/berth/berth.sock")]
    pub socket: PathBuf,
    /// Address of the registry endpoint, or `off`.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub registry_listen: String,
    /// Also serve the control API on this TCP address, every request behind
    /// the auth providers (off by default: the unix socket is root-only).
    #[arg(long)]
    pub control_listen: Option<String>,
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log filter, e.g. `info` or `berth_registry=debug`.
    #[arg(long, env = "BERTH_LOG", default_value = "info")]
    pub log: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // What berthd (and the shims it starts) creates under --root is its
    // own unless a mode says otherwise: the few files containers' users
    // read (`etc/` files, volume data, snapshot roots) set theirs.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .init();
    let config = Config::load(args.config.as_deref())?;
    let root = args.root.clone();
    tokio::task::spawn_blocking(move || crate::root_dir::prepare(&root))
        .await
        .context("preparing --root")??;
    let client_config = ClientConfig {
        insecure_registries: config.client.insecure_registries.clone(),
        ..ClientConfig::default()
    };
    let plugins = crate::plugins::load_configured(&args.root, &config.plugin, &client_config)
        .await
        .context("loading the plugins of the configuration file")?;
    let mut content = ContentStore::open(args.root.join("content")).await?;
    if let Some(name) = &config.registry.storage {
        let backend = plugins.storage_backend(name).with_context(|| {
            format!(
                "[registry] storage = {name:?}: declare it as a [[plugin]] of kind storage-backend"
            )
        })?;
        content = content.with_backend(backend);
        tracing::info!(plugin = %name, "blobs are kept by a storage plugin");
    }
    let state = State::open(args.root.join("state"))?;
    let registry = Registry::new(
        content,
        state.clone(),
        RegistryConfig {
            gc_grace_secs: config.registry.gc_grace_secs,
            upload_expiry_secs: config.registry.upload_expiry_secs,
            ..RegistryConfig::default()
        },
    );
    registry
        .recover()
        .await
        .context("finishing an interrupted garbage collection")?;

    let listener = match args.registry_listen.as_str() {
        "off" => None,
        addr => Some(TcpListener::bind(addr).await.with_context(|| {
            format!("binding the registry to {addr}; is another registry using it?")
        })?),
    };
    let realm = match (&config.registry.realm, &listener) {
        (Some(r), _) => r.clone(),
        (None, Some(l)) => format!("http://{}/token", l.local_addr()?),
        (None, None) => String::new(),
    };
    let auth = Arc::new(AuthService::open(
        &state,
        AuthConfig {
            // Auth plugins need credentials to judge: basic at least.
            mode: match config.registry.auth {
                berth_auth::Mode::None if crate::plugins::has_auth(&config.plugin) => {
                    berth_auth::Mode::Basic
                }
                m => m,
            },
            anonymous_pull: config.registry.anonymous_pull,
            token_ttl_secs: config.registry.token_ttl_secs,
            realm,
            service: config.registry.service.clone(),
            max_failed_logins: config.registry.max_failed_logins,
            failed_login_window_secs: config.registry.failed_login_window_secs,
        },
    )?);

    let snapshots = berth_snapshot::OverlaySnapshotter::open(args.root.join("snapshots"), &state)
        .context("opening the overlay snapshotter")?;
    let unpacker = berth_unpack::Unpacker::new(registry.content().clone(), Arc::new(snapshots))
        .with_limits(config.images.layer_limits());
    let networks = berth_network::Networks::open(&state, config.network.to_config()?)
        .context("opening container networks")?;
    if let Err(e) = networks.reconcile().await {
        tracing::warn!(error = %e, "cleaning up network leftovers");
    }
    let container_logs =
        control::containers::parse_log_opts(&config.containers.log_opts(), Default::default())
            .map_err(|e| anyhow::anyhow!("[containers] in the config file: {}", e.message))?;
    let engine = Arc::new(berth_engine::Engine::new(berth_engine::EngineConfig {
        registry: registry.clone(),
        client: client_config.clone(),
        unpacker: unpacker.clone(),
        root: args.root.clone(),
    }));
    let control_state = Arc::new(control::ControlApp {
        policy: engine.policy().clone(),
        engine,
        container_logs,
        unpacker,
        networks,
        ports: control::containers::Ports::default(),
        health: control::containers::HealthMonitors::default(),
        attaches: control::containers::Attaches::default(),
        shim: shim_path()?,
        registry: registry.clone(),
        auth: auth.clone(),
        client: client_config,
        root: args.root.clone(),
        plugins,
    });
    // Loading compiles and instantiates, and a hook is asked its
    // subscriptions: plugin calls, off the async workers.
    let installing = control_state.clone();
    tokio::task::spawn_blocking(move || control::plugins::load_installed(&installing))
        .await
        .context("loading installed plugins")?
        .map_err(|e| anyhow::anyhow!("loading installed plugins: {e}"))?;
    control::plugins::rewire(&control_state);
    // Before anything reads the containers back: a create a killed berthd
    // left half done is undone (or its shim told to give up).
    control::containers::clean_abandoned(&control_state).await;
    control::containers::reopen_all(&control_state).await;
    let tcp_control = match args
        .control_listen
        .as_ref()
        .or(config.control.listen.as_ref())
    {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the control API to {addr}"))?;
            tracing::info!(addr = %l.local_addr()?, "control API listening on TCP, behind auth");
            let app = control::tcp::app(control_state.clone());
            // The registry's server: the same header timeout against slow
            // clients, and the peer address the failed-login limit counts by.
            Some(tokio::spawn(crate::registry_server::serve(
                l,
                app,
                crate::registry_server::HEADER_TIMEOUT,
                shutdown(),
            )))
        }
        None => None,
    };
    let pushed = if config.scan.on_push {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(control::plugins::scan_on_push::run(
            control_state.clone(),
            rx,
        ));
        Some(tx)
    } else {
        None
    };
    // Containers whose monitor is gone (a reboot, a killed shim) and whose
    // policy says they run.
    control::containers::revive_all(&control_state).await;
    control::containers::resume_all(&control_state).await;
    let control_app = control::app(control_state);
    let socket = bind_socket(&args.socket)?;
    tracing::info!(socket = %args.socket.display(), root = %args.root.display(), "control plane listening");
    let control_task = tokio::spawn(async move {
        axum::serve(socket, control_app)
            .with_graceful_shutdown(shutdown())
            .await
    });

    let registry_task = listener.map(|l| {
        if let Ok(a) = l.local_addr() {
            tracing::info!(addr = %a, "registry listening");
        }
        let app = registry::app(Arc::new(registry::RegistryApp {
            registry,
            auth,
            pushed,
        }));
        tokio::spawn(crate::registry_server::serve(
            l,
            app,
            crate::registry_server::HEADER_TIMEOUT,
            shutdown(),
        ))
    });

    control_task.await?.context("serving the control plane")?;
    if let Some(t) = tcp_control {
        t.await?.context("serving the control API on TCP")?;
    }
    if let Some(t) = registry_task {
        t.await?.context("serving the registry")?;
    }
    state.flush()?;
    let _ = std::fs::remove_file(&args.socket);
    tracing::info!("stopped");
    Ok(())
}

/// `berth-shim` lives next to `berthd`.
fn shim_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating berthd's own executable")?;
    let shim = exe.with_file_name("berth-shim");
    if !shim.exists() {
        anyhow::bail!(
            "{} is missing: berthd needs it beside itself to run containers",
            shim.display()
        );
    }
    Ok(shim)
}

/// Bind the control socket, replacing a stale one left by a crash, and
/// make it reachable by root only.
fn bind_socket(path: &std::path::Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "{} is in use by a running berthd; pick another --socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = UnixListener::bind(path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
