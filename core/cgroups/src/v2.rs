//! cgroup v2: one directory in the unified hierarchy. Controllers must be
//! enabled in every parent's `cgroup.subtree_control` before their files
//! appear in the container's directory. Device rules have no control file
//! here: they become a BPF device filter attached to the directory, and a
//! container whose rules cannot be enforced that way does not start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::{self, Dir, Teardown, wait_until};
use crate::device_filter::DevicePolicy;
use crate::error::{CgroupError, Result};
use crate::fs::CgroupFs;
use crate::resources::{
    CPU_PERIOD_US, Limit, Resources, blkio_to_io_weight, cpu_quota_us, shares_to_weight,
};
use crate::{CgroupManager, Signal, Stats};

/// The v2 controllers berth delegates to container cgroups.
const CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

/// A container cgroup on cgroup v2.
#[derive(Debug)]
pub struct V2Manager {
    root: PathBuf,
    dir: Dir,
}

impl V2Manager {
    /// The cgroup `path` (relative) below the v2 hierarchy `root`.
    pub fn new(fs: Arc<dyn CgroupFs>, root: &Path, path: &Path) -> Self {
        let rel = path.strip_prefix("/").unwrap_or(path);
        Self {
            root: root.to_path_buf(),
            dir: Dir::new(fs, root.join(rel)),
        }
    }

    /// Enable in `parent` every controller it has that berth uses. A
    /// failure is logged, not returned: the setting that needs the
    /// controller then fails with a message naming the missing file, and
    /// containers without limits still run.
    fn enable_controllers(parent: &Dir) -> Result<()> {
        let Some(available) = parent.read_opt("cgroup.controllers")? else {
            return Ok(());
        };
        let enabled = parent
            .read_opt("cgroup.subtree_control")?
            .unwrap_or_default();
        for controller in CONTROLLERS {
            let has = |list: &str| list.split_whitespace().any(|c| c == controller);
            if has(&available)
                && !has(&enabled)
                && let Err(error) =
                    parent.write("cgroup.subtree_control", &format!("+{controller}"))
            {
                tracing::warn!(%error, controller, "cannot enable cgroup v2 controller");
            }
        }
        Ok(())
    }

    fn apply_memory(&self, r: &Resources) -> Result<()> {
        if let Some(mem) = r.memory {
            self.dir.set("--memory", "memory.max", &v2_limit(mem))?;
        }
        if let Some(swap) = r.memory_swap {
            // v2 limits swap alone; Docker's value is memory plus swap.
            let value = match (swap, r.memory) {
                (Limit::Unlimited, _) => "max".to_owned(),
                (Limit::Max(total), Some(Limit::Max(mem))) => total.saturating_sub(mem).to_string(),
                (Limit::Max(total), _) => {
                    return Err(CgroupError::InvalidValue {
                        setting: "--memory-swap",
                        value: total.to_string(),
                        reason: "needs --memory as well".to_owned(),
                    });
                }
            };
            if !self.dir.has("memory.swap.max") && value != "max" {
                return Err(CgroupError::Unsupported {
                    setting: "--memory-swap",
                    reason: "memory.swap.max is missing: this kernel does not account swap"
                        .to_owned(),
                });
            }
            if self.dir.has("memory.swap.max") {
                self.dir.set("--memory-swap", "memory.swap.max", &value)?;
            }
        }
        if let Some(reservation) = r.memory_reservation {
            self.dir
                .set("--memory-reservation", "memory.low", &v2_limit(reservation))?;
        }
        Ok(())
    }

    fn events_frozen(&self) -> Result<bool> {
        Ok(self.dir.keyed("cgroup.events", "frozen")? == 1)
    }
}

fn v2_limit(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "max".to_owned(),
        Limit::Max(n) => n.to_string(),
    }
}

impl CgroupManager for V2Manager {
    fn create(&self, resources: &Resources) -> Result<()> {
        resources.validate()?;
        let fs = self.dir.fs.clone();
        let mut parents: Vec<&Path> = self
            .dir
            .path
            .ancestors()
            .skip(1)
            .take_while(|p| p.starts_with(&self.root))
            .filter(|p| fs.exists(p))
            .collect();
        parents.reverse();
        for parent in parents {
            Self::enable_controllers(&Dir::new(fs.clone(), parent.to_path_buf()))?;
        }
        let leaf = self.dir.path.clone();
        self.dir.create(|dir| {
            if dir.path == leaf {
                Ok(())
            } else {
                Self::enable_controllers(dir)
            }
        })?;
        // Before any process joins. Without the filter, CAP_MKNOD (in
        // Docker's default set) would open any device: fail closed.
        if !resources.devices.is_empty() {
            let policy = DevicePolicy::from_rules(&resources.devices)?;
            match self.dir.set_device_filter(&policy) {
                Ok(()) => {}
                Err(error) if policy.allows_all() => {
                    tracing::debug!(%error, "no device filter, but every device is allowed anyway");
                }
                Err(e) => return Err(e),
            }
        }
        self.apply(resources)
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        self.dir.write("cgroup.procs", &pid.to_string())
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        r.validate()?;
        let dir = &self.dir;
        if let Some(cpus) = r.cpus {
            let quota = if cpus == 0.0 {
                "max".to_owned()
            } else {
                cpu_quota_us(cpus).to_string()
            };
            dir.set("--cpus", "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
        }
        if let Some(shares) = r.cpu_shares {
            dir.set(
                "--cpu-shares",
                "cpu.weight",
                &shares_to_weight(shares).to_string(),
            )?;
        }
        if let Some(cpus) = &r.cpuset_cpus {
            dir.set("--cpuset-cpus", "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = &r.cpuset_mems {
            dir.set("--cpuset-mems", "cpuset.mems", mems)?;
        }
        self.apply_memory(r)?;
        if let Some(limit) = r.pids_limit {
            let value = match limit {
                Limit::Unlimited | Limit::Max(0) => "max".to_owned(),
                Limit::Max(n) => n.to_string(),
            };
            dir.set("--pids-limit", "pids.max", &value)?;
        }
        if let Some(weight) = r.blkio_weight {
            if dir.has("io.weight") {
                let value = format!("default {}", blkio_to_io_weight(weight));
                dir.set("--blkio-weight", "io.weight", &value)?;
            } else if dir.has("io.bfq.weight") {
                dir.set("--blkio-weight", "io.bfq.weight", &weight.to_string())?;
            } else {
                return Err(CgroupError::Unsupported {
                    setting: "--blkio-weight",
                    reason: format!(
                        "not supported by this kernel: neither io.weight nor io.bfq.weight \
                         exists in {}",
                        dir.path.display()
                    ),
                });
            }
        }
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn frozen(&self) -> Result<bool> {
        self.is_frozen()
    }

    fn stats(&self) -> Result<Stats> {
        let dir = &self.dir;
        let mut s = Stats {
            cpu_usage_ns: dir.keyed("cpu.stat", "usage_usec")?.saturating_mul(1000),
            throttled_periods: dir.keyed("cpu.stat", "nr_throttled")?,
            throttled_ns: dir
                .keyed("cpu.stat", "throttled_usec")?
                .saturating_mul(1000),
            memory_usage: dir.read_u64("memory.current")?.flatten().unwrap_or(0),
            memory_limit: dir.read_u64("memory.max")?.flatten(),
            oom_kills: dir.keyed("memory.events", "oom_kill")?,
            pids_current: dir.read_u64("pids.current")?.flatten().unwrap_or(0),
            pids_limit: dir.read_u64("pids.max")?.flatten(),
            ..Stats::default()
        };
        if let Some(text) = dir.read_opt("io.stat")? {
            (s.blkio_read_bytes, s.blkio_write_bytes) = io_bytes(&text);
        }
        Ok(s)
    }

    fn oom_killed(&self) -> Result<bool> {
        Ok(self.dir.keyed("memory.events", "oom_kill")? > 0)
    }

    fn procs(&self) -> Result<Vec<i32>> {
        self.dir.procs()
    }

    fn kill_all(&self, signal: Signal) -> Result<()> {
        common::kill_all(self, signal)
    }

    fn destroy(&self) -> Result<()> {
        common::destroy(self)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.path.clone()]
    }
}

impl Teardown for V2Manager {
    fn all_procs(&self) -> Result<Vec<i32>> {
        self.dir.procs()
    }

    fn is_frozen(&self) -> Result<bool> {
        Ok(self.dir.exists() && self.events_frozen()?)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let value = if frozen { "1" } else { "0" };
        self.dir.set("pause", "cgroup.freeze", value)?;
        // Freezing is asynchronous; cgroup.events says when it is done.
        wait_until(
            &self.dir.path,
            if frozen { "freeze" } else { "thaw" },
            || Ok(self.events_frozen()? == frozen),
        )
    }

    fn kill_at_once(&self) -> Result<bool> {
        if self.dir.has("cgroup.kill") {
            self.dir.write("cgroup.kill", "1")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn dirs(&self) -> Vec<Dir> {
        vec![self.dir.clone()]
    }
}

/// Sum `rbytes=` and `wbytes=` over the devices of an `io.stat` file.
fn io_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for field in text.split_whitespace() {
        if let Some((key, value)) = field.split_once('=') {
            let n: u64 = value.parse().unwrap_or(0);
            match key {
                "rbytes" => read = read.saturating_add(n),
                "wbytes" => write = write.saturating_add(n),
                _ => {}
            }
        }
    }
    (read, write)
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
