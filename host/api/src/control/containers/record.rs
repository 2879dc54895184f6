//! What the daemon remembers of a container (in sled), and its live status
//! read from the shim's files.

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use berth_runtime::shim_files::{RestartPolicy, read_exit, read_restart_state};
use berth_runtime::{ContainerInit, RuntimeError};

use crate::control::{ControlApp, ControlError};

/// A container as recorded at creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub created: u64,
    pub dir: PathBuf,
    pub network: String,
    pub auto_remove: bool,
    /// Signal `stop` sends first (the image's StopSignal or SIGTERM).
    pub stop_signal: String,
    /// `-p` specs.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Volumes mounted (named and anonymous).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Volumes made for this container alone (`-v /path`, image `VOLUME`s).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// `--label`s, with any a pre-create hook added.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--restart`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--hostname` and `--add-host`, for wiring the network again on a
    /// later start.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// The resolved health check, if the container has one.
    #[serde(default)]
    pub healthcheck: Option<super::health::HealthConfig>,
    /// `-t`, `-i`, and Docker's StdinOnce (`run -i`).
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
}

pub use berth_api_types::ContainerStatus as Status;

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn read_pid(dir: &Path, name: &str) -> Option<i32> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
}

/// Whether the container's monitor is alive (the container is not over).
pub(crate) fn shim_alive(dir: &Path) -> bool {
    read_pid(dir, "shim.pid").is_some_and(pid_alive)
}

/// The status the shim's files show.
pub fn status_of(dir: &Path) -> Status {
    if let Some(exit) = read_exit(dir) {
        return Status::Exited {
            code: exit.code,
            oom_killed: exit.oom_killed,
            error: exit.error,
        };
    }
    // The shim, not the container, says whether it is still going: between
    // the container's end and `exit.json` the shim is busy recording it.
    let alive = shim_alive(dir);
    if alive {
        let restarts = read_restart_state(dir);
        if restarts.restarting {
            return Status::Restarting {
                code: restarts.last_exit.map(|e| e.code).unwrap_or(0),
            };
        }
    }
    match (read_pid(dir, "pid"), alive) {
        (Some(pid), true) => Status::Running { pid },
        (None, true) => Status::Created,
        // No monitor and no exit record: it died with the container (e.g.
        // the machine rebooted); report the container as killed.
        (Some(_), false) => Status::Exited {
            code: 137,
            oom_killed: false,
            error: Some("the container's monitor is gone".into()),
        },
        (None, false) => Status::Created,
    }
}

/// The runtime spec the container was created with. Blocking.
pub(crate) fn load_spec(record: &ContainerRecord) -> Result<oci_spec::runtime::Spec, ControlError> {
    oci_spec::runtime::Spec::load(record.dir.join("config.json")).map_err(|e| {
        ControlError::internal(format!(
            "reading the runtime spec of container {}: {e}",
            record.name
        ))
    })
}

/// The running container's init, whose pid the shim recorded as `pid`, by
/// a pidfd checked to be the container's (the number may name a host
/// process by now: see `berth_runtime::ContainerInit`). Blocking.
pub(crate) fn running_init(
    record: &ContainerRecord,
    pid: i32,
    spec: &oci_spec::runtime::Spec,
) -> Result<ContainerInit, ControlError> {
    let cgroup = super::resources::cgroup(record)?;
    ContainerInit::open(pid, cgroup.as_ref(), spec).map_err(|e| match e {
        RuntimeError::NotTheContainer { .. } => ControlError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("container {}: {e}", record.name),
        ),
        other => ControlError::internal(format!("container {}: {other}", record.name)),
    })
}

/// The container's output so far: (stdout, stderr).
pub(crate) fn read_logs(dir: &Path) -> (String, String) {
    let (out, err) = berth_runtime::logfile::read_streams(dir).unwrap_or_default();
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Restarts the current monitor has made.
pub(crate) fn restart_count(dir: &Path) -> u32 {
    read_restart_state(dir).count
}

pub(crate) fn tree(app: &ControlApp) -> Result<berth_state::JsonTree, ControlError> {
    Ok(app.registry.state().json_tree("containers")?)
}

/// Find a container by id, unique id prefix, or name.
pub(crate) fn find(app: &ControlApp, key: &str) -> Result<ContainerRecord, ControlError> {
    let all: Vec<(String, ContainerRecord)> = tree(app)?.list()?;
    let mut hits = all
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.name == key || r.id == key || (key.len() >= 4 && r.id.starts_with(key)));
    match (hits.next(), hits.next()) {
        (Some(r), None) => Ok(r),
        (Some(_), Some(_)) => Err(ControlError::bad_request(format!(
            "{key:?} names more than one container; use more of its id"
        ))),
        (None, _) => Err(ControlError::not_found(format!("no container {key:?}"))),
    }
}
