//! The verbs on existing containers: ps, inspect, wait, kill, stop, rm.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use nix::sys::signal::Signal;

use super::create::RunRequest;
use berth_api_types::{
    ContainerInspect, ContainerSummary, HealthCheck, InspectState, RemovedContainer, StatusResponse,
};
use berth_runtime::shim_files::{LogOptions, MANUAL_STOP, ShimConfig};

use super::record::{
    ContainerRecord, Status, find, load_spec, restart_count, running_init, shim_alive, status_of,
    tree,
};
use crate::control::{ControlApp, ControlError, Shared};

pub(crate) fn shim_config(
    record: &ContainerRecord,
    req: &RunRequest,
    log: LogOptions,
) -> ShimConfig {
    ShimConfig {
        id: record.id.clone(),
        cgroup_parent: "berth".into(),
        memory: req.memory,
        memory_swap: req.memory_swap,
        memory_reservation: req.memory_reservation,
        pids_limit: req.pids_limit,
        cpus: req.cpus,
        cpu_shares: req.cpu_shares,
        cpuset_cpus: req.cpuset_cpus.clone(),
        blkio_weight: None,
        restart: record.restart,
        log,
        tty: record.tty,
        open_stdin: record.open_stdin,
        stdin_once: record.stdin_once,
        console_size: req.console_size.filter(|_| record.tty),
        auto_remove: record.auto_remove,
    }
}

/// `--rm` for a container that runs on without a client waiting for it
/// (`run -d`, `start`): remove it once it has exited.
pub(crate) fn remove_when_done(app: &std::sync::Arc<ControlApp>, record: &ContainerRecord) {
    let (app, record) = (app.clone(), record.clone());
    tokio::spawn(async move {
        if let Status::Exited { .. } = wait_exit(&record.dir, None).await {
            cleanup(&app, &record, true).await;
        }
    });
}

/// Tell the shim that what follows is the user's doing: the restart policy
/// must not undo it (Docker's rule), until the next `start`.
fn mark_manual_stop(record: &ContainerRecord) -> Result<(), ControlError> {
    berth_runtime::shim_files::write_atomic(&record.dir.join(MANUAL_STOP), b"").map_err(|e| {
        ControlError::internal(format!(
            "marking container {} as stopped by the user: {e}",
            record.name
        ))
    })
}

/// `stop`: the stop signal, SIGKILL after `grace`; a container waiting to
/// be restarted just stays down. Returns how it ended.
pub(crate) async fn stop_container(
    r: &ContainerRecord,
    grace: Duration,
) -> Result<Status, ControlError> {
    if !shim_alive(&r.dir) {
        return Ok(status_of(&r.dir));
    }
    mark_manual_stop(r)?;
    if matches!(status_of(&r.dir), Status::Running { .. }) {
        let first = parse_signal(&r.stop_signal)?;
        let _ = signal(r, first);
        let status = wait_exit(&r.dir, Some(grace)).await;
        if matches!(status, Status::Exited { .. }) {
            return Ok(status);
        }
        let _ = signal(r, Signal::SIGKILL);
    }
    Ok(wait_exit(&r.dir, Some(Duration::from_secs(10))).await)
}

/// Wait for the container in `dir` to end (at most `timeout`; a timeout
/// past what the clock can represent, as `stop -t` with 2^63, is none).
pub(crate) async fn wait_exit(dir: &Path, timeout: Option<Duration>) -> Status {
    let started = Instant::now();
    let deadline = timeout.and_then(|t| started.checked_add(t));
    loop {
        let s = status_of(dir);
        if matches!(s, Status::Exited { .. }) || deadline.is_some_and(|d| Instant::now() > d) {
            return s;
        }
        // An eighth of the wait so far, so the exit is seen at most ~12%
        // late (doubling the pause made it up to 100% late: a 20 ms run
        // on a busy disk was seen at 31 ms); 50 ms once the wait is long.
        let pause =
            (started.elapsed() / 8).clamp(Duration::from_millis(1), Duration::from_millis(50));
        tokio::time::sleep(pause).await;
    }
}

/// Signal the container's init, through its pidfd once it is checked to
/// be the container's: the recorded pid may name a host process by now.
fn signal(record: &ContainerRecord, sig: Signal) -> Result<(), ControlError> {
    match status_of(&record.dir) {
        Status::Running { pid } => running_init(record, pid, &load_spec(record)?)?
            .signal(sig)
            .map_err(|e| {
                ControlError::internal(format!("signalling container {}: {e}", record.name))
            }),
        _ => Err(ControlError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("container {} is not running", record.name),
        )),
    }
}

/// Unmount, disconnect and forget a container that has ended (or kill it);
/// with `volumes`, also remove its anonymous volumes (`--rm`, `rm -v`).
pub(crate) async fn cleanup(app: &ControlApp, record: &ContainerRecord, volumes: bool) {
    if shim_alive(&record.dir) {
        if let Err(e) = mark_manual_stop(record) {
            tracing::warn!(container = %record.id, error = %e, "removing a running container");
        }
        // A pid that is not the container's any more is left alone: the
        // cgroup's removal below kills whatever is left of the container.
        let _ = signal(record, Signal::SIGKILL);
        wait_exit(&record.dir, Some(Duration::from_secs(10))).await;
    }
    app.ports.close(&record.id);
    app.health.stop(&record.id);
    app.attaches.forget(&record.id);
    let network = async {
        if let Err(e) = app.networks.detach_all(&record.id).await {
            tracing::warn!(container = %record.id, error = %e, "disconnecting");
        }
    };
    let rootfs = record.dir.join("rootfs");
    let stale = record.clone();
    let files = tokio::task::spawn_blocking(move || {
        super::resources::remove_stale_cgroup(&stale);
        // Every layer of a stacked mount; stop at the first failure.
        while berth_snapshot::unmount(&rootfs).is_ok() {}
    });
    // Deleting a veth is mostly waiting for the kernel (~2 ms): let it
    // overlap the unmount. The directory goes after both: until the
    // endpoint is released, a container joining one of its user-defined
    // networks may still rewrite the hosts file in it.
    let _ = tokio::join!(network, files);
    // The directory leaves `containers/` in one rename; its files and the
    // snapshot are deleted after the answer (see `super::trash`).
    let trashed = super::trash::put(app, record).await;
    if let Ok(t) = tree(app) {
        // No flush: a record that outlives a power cut names a directory
        // that is gone, which start-up removes as an unfinished create.
        let _ = t.remove_unflushed(&record.id);
    }
    if let Some(trashed) = trashed {
        super::trash::empty_later(app, trashed);
    }
    if volumes {
        for v in &record.anonymous_volumes {
            if let Err(e) = crate::control::volumes::remove_volume(app, v) {
                tracing::warn!(volume = %v, error = %e, "removing an anonymous volume");
            }
        }
    }
}

/// When the container's process was created (the shim's `pid` file).
fn started(dir: &Path) -> Option<u64> {
    let t = std::fs::metadata(dir.join("pid")).ok()?.modified().ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn summary(r: &ContainerRecord) -> ContainerSummary {
    ContainerSummary {
        started: started(&r.dir),
        health: super::health::read_state(&r.dir)
            .filter(|_| r.healthcheck.is_some())
            .map(|h| h.status),
        id: r.id.clone(),
        name: r.name.clone(),
        image: r.image.clone(),
        command: r.command.clone(),
        created: r.created,
        network: r.network.clone(),
        labels: r.labels.clone(),
        status: status_of(&r.dir),
        restart_count: restart_count(&r.dir),
    }
}

pub use berth_api_types::ListQuery;

pub(crate) async fn list(
    State(app): Shared,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let all: Vec<(String, ContainerRecord)> = tree(&app)?.list()?;
    let out: Vec<ContainerSummary> = all
        .iter()
        .map(|(_, r)| summary(r))
        .filter(|s| q.all || matches!(s.status, Status::Running { .. } | Status::Restarting { .. }))
        .collect();
    Ok(axum::Json(out))
}

pub(crate) async fn inspect(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    let v = ContainerInspect {
        summary: summary(&r),
        dir: r.dir.clone(),
        auto_remove: r.auto_remove,
        restart_policy: r.restart.to_string(),
        healthcheck: r.healthcheck.as_ref().map(|h| HealthCheck {
            test: h.test.clone(),
            interval: h.interval.into(),
            timeout: h.timeout.into(),
            start_period: h.start_period.into(),
            retries: h.retries,
        }),
        tty: r.tty,
        open_stdin: r.open_stdin,
        stdin_once: r.stdin_once,
        state: r.healthcheck.is_some().then(|| InspectState {
            health: super::health::read_state(&r.dir),
        }),
        spec: std::fs::read(r.dir.join("config.json"))
            .ok()
            .map(|spec| serde_json::from_slice(&spec).unwrap_or_default()),
        resources: std::fs::read(r.dir.join("shim.json"))
            .ok()
            .map(|cfg| serde_json::from_slice(&cfg).unwrap_or_default()),
    };
    Ok(axum::Json(v))
}

pub(crate) async fn wait(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    let status = wait_exit(&r.dir, None).await;
    Ok(axum::Json(StatusResponse { id: r.id, status }))
}

pub use berth_api_types::KillQuery;

fn parse_signal(s: &str) -> Result<Signal, ControlError> {
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| ControlError::bad_request(format!("unknown signal {s}")));
    }
    name.parse::<Signal>()
        .map_err(|_| ControlError::bad_request(format!("unknown signal {s}")))
}

pub(crate) async fn kill(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<KillQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    let sig = parse_signal(q.signal.as_deref().unwrap_or("SIGKILL"))?;
    // As Docker: SIGKILL or the stop signal ends the container for good;
    // another signal (e.g. SIGHUP to reload) leaves the policy in force.
    let ending = sig == Signal::SIGKILL || parse_signal(&r.stop_signal).is_ok_and(|s| s == sig);
    if ending && matches!(status_of(&r.dir), Status::Running { .. }) {
        mark_manual_stop(&r)?;
    }
    signal(&r, sig)?;
    Ok(StatusCode::NO_CONTENT)
}

pub use berth_api_types::StopQuery;

pub(crate) async fn stop(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<StopQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    let status = stop_container(&r, Duration::from_secs(q.t.unwrap_or(10))).await?;
    Ok(axum::Json(StatusResponse { id: r.id, status }))
}

pub use berth_api_types::RemoveQuery;

pub(crate) async fn remove(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    if matches!(
        status_of(&r.dir),
        Status::Running { .. } | Status::Restarting { .. }
    ) && !q.force
    {
        return Err(ControlError::new(
            StatusCode::CONFLICT,
            "container_running",
            format!(
                "container {} is running: stop it first or use rm -f",
                r.name
            ),
        ));
    }
    app.policy
        .check(berth_policy::Event::PreRemove(super::policy::event_of(
            &r,
            match status_of(&r.dir) {
                Status::Exited { code, .. } => Some(code),
                _ => None,
            },
        )))
        .await?;
    cleanup(&app, &r, q.volumes).await;
    Ok(axum::Json(RemovedContainer {
        id: r.id,
        name: r.name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stop?t=9223372036854775808` once panicked adding the grace to the
    /// clock and closed the connection with no answer: such a grace is no
    /// deadline, so the wait goes on (here for a container that never ends).
    #[tokio::test]
    async fn a_grace_past_the_clock_waits_instead_of_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let waited = tokio::time::timeout(
            Duration::from_millis(100),
            wait_exit(dir.path(), Some(Duration::from_secs(1 << 63))),
        )
        .await;
        assert!(waited.is_err(), "returned {waited:?}");
    }
}
