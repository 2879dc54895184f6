//! Verbs on a running container's cgroup: pause, unpause, stats, top.

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_cgroups::{CgroupManager, Layout};

use super::record::{ContainerRecord, Status, find, status_of};
use crate::control::{ControlError, Shared};

/// Remove what a shim that died without cleaning up (killed, or a reboot
/// of a hybrid host whose cgroups persisted) left of its container's
/// cgroup, killing anything still in it. Blocking.
pub(crate) fn remove_stale_cgroup(record: &ContainerRecord) {
    match cgroup(record).map(|c| c.destroy()) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(container = %record.id, error = %e, "removing a stale cgroup"),
        Err(e) => tracing::warn!(container = %record.id, error = %e, "removing a stale cgroup"),
    }
}

/// The cgroup the shim made for this container.
pub(crate) fn cgroup(record: &ContainerRecord) -> Result<Box<dyn CgroupManager>, ControlError> {
    let layout = Layout::detect().map_err(ControlError::internal)?;
    Ok(berth_cgroups::manager_for(
        &layout,
        &berth_cgroups::container_path("berth", &record.id),
    ))
}

/// Whether the container's cgroup is frozen (`pause`).
pub(crate) fn paused(record: &ContainerRecord) -> bool {
    cgroup(record).is_ok_and(|cg| cg.frozen().unwrap_or(false))
}

fn running(record: &ContainerRecord) -> Result<(), ControlError> {
    running_pid(record).map(|_| ())
}

/// The host pid of a running container's init.
fn running_pid(record: &ContainerRecord) -> Result<i32, ControlError> {
    match status_of(&record.dir) {
        Status::Running { pid } => Ok(pid),
        _ => Err(ControlError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("container {} is not running", record.name),
        )),
    }
}

/// Freeze or thaw every process of a running container.
async fn set_frozen(
    app: &crate::control::ControlApp,
    key: &str,
    frozen: bool,
) -> Result<StatusCode, ControlError> {
    let r = find(app, key)?;
    running(&r)?;
    let cg = cgroup(&r)?;
    let verb = if frozen { "freezing" } else { "thawing" };
    tokio::task::spawn_blocking(move || if frozen { cg.freeze() } else { cg.thaw() })
        .await
        .map_err(ControlError::internal)?
        .map_err(|e| ControlError::internal(format!("{verb} container {}: {e}", r.name)))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn pause(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    set_frozen(&app, &key, true).await
}

pub(crate) async fn unpause(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    set_frozen(&app, &key, false).await
}

pub(crate) async fn stats(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    running(&r)?;
    let s = cgroup(&r)?.stats().map_err(ControlError::internal)?;
    Ok(axum::Json(berth_api_types::Stats {
        id: r.id,
        name: r.name,
        cpu_usage_ns: s.cpu_usage_ns,
        throttled_periods: s.throttled_periods,
        throttled_ns: s.throttled_ns,
        memory_usage: s.memory_usage,
        memory_limit: s.memory_limit,
        oom_kills: s.oom_kills,
        pids_current: s.pids_current,
        pids_limit: s.pids_limit,
        blkio_read_bytes: s.blkio_read_bytes,
        blkio_write_bytes: s.blkio_write_bytes,
    }))
}

/// `docker top`: the processes in the container's cgroup, as `ps -ef`.
pub(crate) async fn top(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let r = find(&app, &key)?;
    let init = running_pid(&r)?;
    let cg = cgroup(&r)?;
    let name = r.name.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let pids = cg
            .procs()
            .map_err(|e| format!("listing the processes of container {name}: {e}"))?;
        berth_runtime::top(&pids, init).map_err(|e| e.to_string())
    })
    .await
    .map_err(ControlError::internal)?
    .map_err(ControlError::internal)?;
    Ok(axum::Json(berth_api_types::Top {
        titles: berth_runtime::TOP_TITLES.map(String::from).to_vec(),
        processes: rows.into_iter().map(Vec::from).collect(),
    }))
}
