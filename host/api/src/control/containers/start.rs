//! Starting a container's monitor: for `run`, `start`, `restart`, and the
//! daemon's start-up, which brings `always` and `unless-stopped`
//! containers back (after a reboot, or when their shim was killed).
//!
//! Restarts by policy do not come through here: the shim does them itself,
//! so they go on while berthd is down (see `berth-shim`).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_runtime::shim_files::{MANUAL_STOP, RESTART_STATE};

use super::record::{ContainerRecord, Status, find, shim_alive, status_of, tree};
use crate::control::{ControlApp, ControlError, Shared};

/// What a previous monitor left that must not confuse the next one.
const STALE: [&str; 6] = [
    "exit.json",
    "pid",
    "shim.pid",
    RESTART_STATE,
    "start",
    MANUAL_STOP,
];

/// Start a monitor for the prepared container `record` and let it go once
/// its network is wired.
pub(crate) async fn start_shim(
    app: &ControlApp,
    record: &ContainerRecord,
) -> Result<(), ControlError> {
    for f in STALE {
        match std::fs::remove_file(record.dir.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ControlError::internal(format!(
                    "removing {} of container {}: {e}",
                    f, record.name
                )));
            }
            _ => {}
        }
    }
    ensure_rootfs(app, record).await?;
    let stale = record.clone();
    tokio::task::spawn_blocking(move || super::resources::remove_stale_cgroup(&stale))
        .await
        .map_err(ControlError::internal)?;
    // A previous run's endpoint died with its namespace; free its address.
    app.ports.close(&record.id);
    if let Err(e) = app.networks.detach_all(&record.id).await {
        tracing::warn!(container = %record.id, error = %e, "disconnecting a previous run");
    }
    let fifo = record.dir.join("start");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| ControlError::internal(format!("creating the start fifo: {e}")))?;
    spawn_shim(app, &record.dir)?;
    let pid = match await_created(&record.dir).await {
        Status::Running { pid } => pid,
        Status::Exited { code, error, .. } => {
            return Err(ControlError::new(
                StatusCode::BAD_REQUEST,
                super::create::exit_code_name(code),
                error
                    .unwrap_or_else(|| format!("the container could not be created (exit {code})")),
            ));
        }
        Status::Created | Status::Restarting { .. } => {
            let _ = abort_start(&fifo);
            return Err(ControlError::internal(
                "the container monitor did not report within 30 s; see shim.log",
            ));
        }
    };
    app.attaches.connect_waiting(record).await;
    if let Err(e) = wire(app, record, pid).await {
        let _ = abort_start(&fifo);
        return Err(e);
    }
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .and_then(|mut f| f.write_all(b"1"))
    })
    .await
    .map_err(ControlError::internal)?
    .map_err(|e| ControlError::internal(format!("starting the container: {e}")))?;
    Ok(())
}

/// Network and published ports for the created process `pid`.
async fn wire(app: &ControlApp, record: &ContainerRecord, pid: i32) -> Result<(), ControlError> {
    let mode: berth_network::NetworkMode = match record.network.parse() {
        Ok(m) => m,
        Err(never) => match never {},
    };
    let extra_hosts = berth_network::parse_extra_hosts(&record.add_hosts)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
    let endpoint = berth_network::EndpointSpec {
        aliases: vec![record.name.clone()],
        hostname: record.hostname.clone(),
        extra_hosts,
        hosts_path: Some(record.dir.join("etc").join("hosts")),
    };
    app.networks
        .connect(&mode, &netns, &record.id, endpoint)
        .await
        .map_err(|e| {
            ControlError::internal(format!(
                "connecting the container to {}: {e}",
                record.network
            ))
        })?;
    super::ports::open(app, record).await
}

/// Tell a shim waiting for its go that there is none: it kills what it
/// created and records the failure. (Opening the write end without
/// blocking works because the shim holds the read end open; with no shim
/// waiting it fails, and this returns false.)
pub(super) fn abort_start(fifo: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(fifo)
        .is_ok()
}

/// The root file system is mounted after the container's first start;
/// after a reboot it is not, and is mounted again from the snapshot.
async fn ensure_rootfs(app: &ControlApp, record: &ContainerRecord) -> Result<(), ControlError> {
    let rootfs = record.dir.join("rootfs");
    if berth_snapshot::is_mounted(&rootfs) {
        return Ok(());
    }
    let snapshots = app.unpacker.snapshots().clone();
    let id = record.id.clone();
    tokio::task::spawn_blocking(move || {
        let mounts = snapshots.mounts(&id).map_err(ControlError::internal)?;
        berth_snapshot::mount_all(&mounts, &rootfs).map_err(|e| {
            ControlError::internal(format!("mounting the root file system again: {e}"))
        })
    })
    .await
    .map_err(ControlError::internal)?
}

/// Wait until the shim wrote the pid (created) or an exit record (failed).
async fn await_created(dir: &Path) -> Status {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status_of(dir);
        if s != Status::Created || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Start the shim (which puts itself in its own session, so it outlives
/// the daemon); a task reaps it if the daemon is still there when it ends.
/// No pre_exec hook, so the spawn is a posix_spawn, cheap whatever the
/// daemon's address space.
fn spawn_shim(app: &ControlApp, dir: &Path) -> Result<(), ControlError> {
    let log = berth_runtime::shim_files::private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("shim.log"))
        .map_err(ControlError::internal)?;
    let mut cmd = tokio::process::Command::new(&app.shim);
    cmd.arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut child = cmd
        .spawn()
        .map_err(|e| ControlError::internal(format!("starting {}: {e}", app.shim.display())))?;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}

/// `start`: run a created or ended container again (a no-op if it runs).
pub(crate) async fn start(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    if !shim_alive(&r.dir) {
        start_shim(&app, &r).await?;
        super::create::notify_started(&app, &r);
        super::health::start(&app, &r);
        if r.auto_remove {
            super::lifecycle::remove_when_done(&app, &r);
        }
    }
    let status = status_of(&r.dir);
    Ok(axum::Json(berth_api_types::StatusResponse {
        id: r.id,
        status,
    }))
}

pub use berth_api_types::StopQuery as RestartQuery;

/// `restart [-t N]`: stop as `stop` does (the policy does not fire), then
/// start again.
pub(crate) async fn restart(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<RestartQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    super::lifecycle::stop_container(&r, Duration::from_secs(q.t.unwrap_or(10))).await?;
    start_shim(&app, &r).await?;
    super::create::notify_started(&app, &r);
    super::health::start(&app, &r);
    let status = status_of(&r.dir);
    Ok(axum::Json(berth_api_types::StatusResponse {
        id: r.id,
        status,
    }))
}

/// At daemon start: bring back every `always` container, and every
/// `unless-stopped` one the user did not stop, whose monitor is gone.
pub async fn revive_all(app: &std::sync::Arc<ControlApp>) {
    let all: Vec<(String, ContainerRecord)> = match tree(app).and_then(|t| Ok(t.list()?)) {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "listing containers to restart");
            return;
        }
    };
    for (_, r) in all {
        let manual = r.dir.join(MANUAL_STOP).exists();
        if shim_alive(&r.dir) || !r.restart.revive_on_boot(manual) {
            continue;
        }
        match start_shim(app, &r).await {
            Ok(()) => {
                super::create::notify_started(app, &r);
                super::health::start(app, &r);
                tracing::info!(container = %r.name, policy = %r.restart, "restarted by its policy");
            }
            Err(e) => tracing::warn!(container = %r.name, error = %e, "restarting by policy"),
        }
    }
}
