//! What the daemon remembers of a container (in sled), and its live status
//! read from the shim's files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
}

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Status {
    Created,
    Running {
        pid: i32,
    },
    Exited {
        code: i32,
        oom_killed: bool,
        error: Option<String>,
    },
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// The status the shim's files show.
pub fn status_of(dir: &Path) -> Status {
    if let Some(exit) = super::shim_files::read_exit(dir) {
        return Status::Exited {
            code: exit.code,
            oom_killed: exit.oom_killed,
            error: exit.error,
        };
    }
    let read_pid = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
    };
    // The shim, not the container, says whether it is still going: between
    // the container's end and `exit.json` the shim is busy recording it.
    let shim_alive = read_pid("shim.pid").is_some_and(pid_alive);
    match (read_pid("pid"), shim_alive) {
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

/// The container's output so far: (stdout, stderr).
pub(crate) fn read_logs(dir: &Path) -> (String, String) {
    let read = |n: &str| {
        String::from_utf8_lossy(&std::fs::read(dir.join(n)).unwrap_or_default()).into_owned()
    };
    (read("stdout.log"), read("stderr.log"))
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
