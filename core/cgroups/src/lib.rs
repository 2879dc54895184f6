//! Container resource limits on cgroups. This crate owns the cgroup
//! directories of containers: it detects whether the host runs cgroup v1,
//! v2 or the hybrid of both, creates one cgroup per container in every
//! hierarchy, writes limits (Docker's `--cpus`, `--memory`, ... semantics)
//! and device rules (v1's `devices` files, v2's BPF device filter),
//! freezes, signals, reports stats and OOM kills, and removes everything
//! on `destroy`. It never starts processes or enters namespaces: the
//! runtime hands it pids.
//!
//! All control-file access goes through [`CgroupFs`], so the mapping is
//! unit-tested with [`MemoryFs`]; integration tests run on the host.
//! The files are written here rather than through the `cgroups-rs` crate:
//! it writes straight to the host (no seam for tests), and its
//! `hierarchies::auto()` treats the hybrid layout as plain v1, ignoring
//! the unified hierarchy that berth uses for tracking and `cgroup.kill`.
//!
//! ```no_run
//! # fn demo(pid: i32) -> Result<(), berth_cgroups::CgroupError> {
//! use berth_cgroups::{Layout, Limit, Resources, container_path, manager_for};
//! let layout = Layout::detect()?;
//! let cgroup = manager_for(&layout, &container_path("berth", "c0ffee"));
//! cgroup.create(&Resources { memory: Some(Limit::Max(64 << 20)), ..Resources::default() })?;
//! cgroup.add_process(pid)?;
//! let stats = cgroup.stats()?;
//! cgroup.destroy()?;
//! # Ok(()) }
//! ```

mod bpf;
mod common;
mod device_filter;
mod devices;
mod error;
mod fs;
mod layout;
mod resources;
mod v1;
mod v2;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use bpf::{device_filters, program_loaded};
pub use device_filter::{DevicePolicy, Insn};
pub use devices::{DeviceKind, DeviceRule, all_devices, docker_default};
pub use error::{CgroupError, Result};
pub use fs::{CgroupFs, HostFs, MemoryFs};
pub use layout::{LAYOUT_ENV, Layout, V1_CONTROLLERS};
pub use nix::sys::signal::Signal;
pub use resources::{
    CPU_PERIOD_US, Limit, Resources, blkio_to_io_weight, cpu_quota_us, shares_to_weight,
};
pub use v1::V1Manager;
pub use v2::V2Manager;

/// Usage counters of one container's cgroup. Counters a hierarchy does not
/// provide are 0 (or `None` for limits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU time used, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// CFS periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Time spent throttled, in nanoseconds.
    pub throttled_ns: u64,
    /// Memory in use, in bytes.
    pub memory_usage: u64,
    /// The memory limit, if any.
    pub memory_limit: Option<u64>,
    /// How many processes the OOM killer killed in this cgroup.
    pub oom_kills: u64,
    /// Processes (tasks) now in the cgroup.
    pub pids_current: u64,
    /// The pids limit, if any.
    pub pids_limit: Option<u64>,
    /// Bytes read from block devices.
    pub blkio_read_bytes: u64,
    /// Bytes written to block devices.
    pub blkio_write_bytes: u64,
}

/// One container's cgroup, whatever the hierarchy. Every method is safe to
/// call again after a failure; `destroy` is idempotent.
pub trait CgroupManager: Send + Sync + fmt::Debug {
    /// Create the cgroup (and missing parents) and apply `resources`.
    fn create(&self, resources: &Resources) -> Result<()>;
    /// Move a process (with all its threads) into the cgroup.
    fn add_process(&self, pid: i32) -> Result<()>;
    /// Apply the settings that are `Some`, live.
    fn apply(&self, resources: &Resources) -> Result<()>;
    /// Freeze every process; returns once the kernel reports frozen.
    fn freeze(&self) -> Result<()>;
    /// Thaw a frozen cgroup.
    fn thaw(&self) -> Result<()>;
    /// Whether the cgroup is frozen (paused).
    fn frozen(&self) -> Result<bool>;
    /// Current usage counters.
    fn stats(&self) -> Result<Stats>;
    /// Whether the OOM killer has killed a process of this cgroup.
    fn oom_killed(&self) -> Result<bool>;
    /// The processes in the cgroup.
    fn procs(&self) -> Result<Vec<i32>>;
    /// Send `signal` to every process, including ones forked meanwhile.
    fn kill_all(&self, signal: Signal) -> Result<()>;
    /// Kill what is left, wait until empty and remove the directories in
    /// every hierarchy. Parents (`berth/`) are kept.
    fn destroy(&self) -> Result<()>;
    /// The cgroup's directories, one per hierarchy.
    fn paths(&self) -> Vec<PathBuf>;
}

/// The cgroup path of a container: `<parent>/<id>` below each hierarchy
/// root.
pub fn container_path(parent: &str, id: &str) -> PathBuf {
    Path::new(parent.trim_matches('/')).join(id)
}

/// The manager for `path` (relative to every hierarchy root) on the host
/// file system.
pub fn manager_for(layout: &Layout, path: &Path) -> Box<dyn CgroupManager> {
    manager_with_fs(Arc::new(HostFs), layout, path)
}

/// [`manager_for`] over another [`CgroupFs`], for tests.
pub fn manager_with_fs(
    fs: Arc<dyn CgroupFs>,
    layout: &Layout,
    path: &Path,
) -> Box<dyn CgroupManager> {
    match layout {
        Layout::Unified { root } => Box::new(V2Manager::new(fs, root, path)),
        Layout::Legacy { controllers } => Box::new(V1Manager::new(fs, controllers, None, path)),
        Layout::Hybrid {
            controllers,
            unified,
        } => Box::new(V1Manager::new(fs, controllers, Some(unified), path)),
    }
}
