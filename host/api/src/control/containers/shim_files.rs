//! The files a container's shim (`berth-shim`) and the daemon share in the
//! container's directory; both sides use these types.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the daemon tells a shim besides the runtime spec. Limits use
/// Docker's conventions (negative = unlimited).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// Parent cgroup path under each hierarchy (`berth`).
    pub cgroup_parent: String,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub blkio_weight: Option<u16>,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Docker's exit code: the status, 128 + signal, or 125/126/127 when
    /// the command never ran.
    pub code: i32,
    pub oom_killed: bool,
    /// Seconds since the Unix epoch.
    pub finished_at: u64,
    /// Why the container never ran, if it did not.
    pub error: Option<String>,
}

/// Write `bytes` to `path` so that a reader sees all or nothing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The exit record in a container directory, if the container has ended.
pub fn read_exit(dir: &Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(dir.join("exit.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}
