//! cgroup v1: one directory per controller hierarchy. On the hybrid
//! layout the same path is also created in the controller-less v2
//! hierarchy, as systemd does, so that every process of the container is
//! tracked in one place and `cgroup.kill` can end them all at once; the
//! device rules are attached there too, as a BPF device filter, in case
//! the v1 controller alone is not what the kernel consults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::{self, Dir, Teardown, wait_until};
use crate::device_filter::DevicePolicy;
use crate::error::{CgroupError, Result};
use crate::fs::CgroupFs;
use crate::resources::{CPU_PERIOD_US, Limit, Resources, cpu_quota_us};
use crate::{CgroupManager, Signal, Stats};

/// A container cgroup on cgroup v1 (legacy or hybrid layout).
#[derive(Debug)]
pub struct V1Manager {
    /// Controller name to this cgroup's directory in its hierarchy;
    /// co-mounted controllers (`cpu,cpuacct`) share a directory.
    controllers: BTreeMap<String, Dir>,
    /// The same cgroup in the v2 hierarchy of the hybrid layout.
    unified: Option<Dir>,
}

impl V1Manager {
    /// The cgroup `path` (relative) below each hierarchy root in
    /// `controllers`, and below `unified` if given.
    pub fn new(
        fs: Arc<dyn CgroupFs>,
        controllers: &BTreeMap<String, PathBuf>,
        unified: Option<&Path>,
        path: &Path,
    ) -> Self {
        let rel = path.strip_prefix("/").unwrap_or(path);
        Self {
            controllers: controllers
                .iter()
                .map(|(name, root)| (name.clone(), Dir::new(fs.clone(), root.join(rel))))
                .collect(),
            unified: unified.map(|root| Dir::new(fs.clone(), root.join(rel))),
        }
    }

    /// The directory of `controller`, or why a setting needs it.
    fn controller(&self, controller: &str, setting: &'static str) -> Result<&Dir> {
        self.controllers
            .get(controller)
            .ok_or_else(|| CgroupError::Unsupported {
                setting,
                reason: format!("the {controller} cgroup controller is not mounted"),
            })
    }

    /// Each v1 directory once, then the unified one.
    fn distinct_dirs(&self) -> Vec<Dir> {
        let mut seen = Vec::<&Path>::new();
        let mut out = Vec::new();
        for dir in self.controllers.values().chain(self.unified.as_ref()) {
            if !seen.contains(&dir.path.as_path()) {
                seen.push(&dir.path);
                out.push(dir.clone());
            }
        }
        out
    }

    fn apply_cpu(&self, r: &Resources) -> Result<()> {
        if let Some(cpus) = r.cpus {
            let dir = self.controller("cpu", "--cpus")?;
            if cpus == 0.0 {
                dir.set("--cpus", "cpu.cfs_quota_us", "-1")?;
            } else {
                dir.set("--cpus", "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                dir.set(
                    "--cpus",
                    "cpu.cfs_quota_us",
                    &cpu_quota_us(cpus).to_string(),
                )?;
            }
        }
        if let Some(shares) = r.cpu_shares {
            let dir = self.controller("cpu", "--cpu-shares")?;
            dir.set("--cpu-shares", "cpu.shares", &shares.to_string())?;
        }
        if let Some(cpus) = &r.cpuset_cpus {
            let dir = self.controller("cpuset", "--cpuset-cpus")?;
            dir.set("--cpuset-cpus", "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = &r.cpuset_mems {
            let dir = self.controller("cpuset", "--cpuset-mems")?;
            dir.set("--cpuset-mems", "cpuset.mems", mems)?;
        }
        Ok(())
    }

    fn apply_memory(&self, r: &Resources) -> Result<()> {
        const MEM: &str = "memory.limit_in_bytes";
        const MEMSW: &str = "memory.memsw.limit_in_bytes";
        if r.memory.is_none() && r.memory_swap.is_none() && r.memory_reservation.is_none() {
            return Ok(());
        }
        let dir = self.controller("memory", "--memory")?;
        let mut swap = r.memory_swap;
        if swap.is_some() && !dir.has(MEMSW) {
            if let Some(Limit::Max(_)) = swap {
                return Err(CgroupError::Unsupported {
                    setting: "--memory-swap",
                    reason: format!(
                        "{MEMSW} is missing: this kernel does not account swap \
                         (boot with swapaccount=1), or leave --memory-swap unset"
                    ),
                });
            }
            // Unlimited swap is what the kernel does anyway.
            swap = None;
        }
        match (r.memory, swap) {
            (Some(mem), Some(swap)) => {
                // The kernel keeps memsw >= memory at every write, so the
                // order depends on whether the total grows or shrinks.
                let current = dir.read_u64(MEMSW)?.flatten();
                let grows = match (swap, current) {
                    (Limit::Unlimited, _) => true,
                    (Limit::Max(_), None) => false,
                    (Limit::Max(new), Some(old)) => new >= old,
                };
                if grows {
                    dir.set("--memory-swap", MEMSW, &v1_limit(swap))?;
                    dir.set("--memory", MEM, &v1_limit(mem))?;
                } else {
                    dir.set("--memory", MEM, &v1_limit(mem))?;
                    dir.set("--memory-swap", MEMSW, &v1_limit(swap))?;
                }
            }
            (Some(mem), None) => dir.set("--memory", MEM, &v1_limit(mem))?,
            (None, Some(swap)) => dir.set("--memory-swap", MEMSW, &v1_limit(swap))?,
            (None, None) => {}
        }
        if let Some(reservation) = r.memory_reservation {
            dir.set(
                "--memory-reservation",
                "memory.soft_limit_in_bytes",
                &v1_limit(reservation),
            )?;
        }
        Ok(())
    }

    fn apply_blkio(&self, weight: u16) -> Result<()> {
        let dir = self.controller("blkio", "--blkio-weight")?;
        // CFQ had blkio.weight; with BFQ it is blkio.bfq.weight; with
        // mq-deadline or none (common on VMs) neither exists.
        let file = ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|f| dir.has(f))
            .ok_or_else(|| CgroupError::Unsupported {
                setting: "--blkio-weight",
                reason: "not supported by this kernel: neither blkio.weight nor \
                         blkio.bfq.weight exists (the block scheduler is not CFQ or BFQ)"
                    .to_owned(),
            })?;
        dir.set("--blkio-weight", file, &weight.to_string())
    }

    fn freezer(&self) -> Option<&Dir> {
        self.controllers.get("freezer")
    }
}

fn v1_limit(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "-1".to_owned(),
        Limit::Max(n) => n.to_string(),
    }
}

/// A new v1 cpuset cgroup starts with empty `cpus` and `mems`, and no
/// process can join it until they are set: inherit the parent's.
fn init_cpuset(dir: &Dir) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if dir.has(file) && dir.read(file)?.trim().is_empty() {
            let parent = dir
                .path
                .parent()
                .map(|p| Dir::new(dir.fs.clone(), p.into()));
            if let Some(parent) = parent.filter(|p| p.has(file)) {
                let value = parent.read(file)?;
                dir.write(file, value.trim())?;
            }
        }
    }
    Ok(())
}

impl CgroupManager for V1Manager {
    fn create(&self, resources: &Resources) -> Result<()> {
        resources.validate()?;
        for dir in self.distinct_dirs() {
            dir.create(init_cpuset)?;
        }
        if !resources.devices.is_empty() {
            let dir = self.controller("devices", "device rules")?;
            for rule in &resources.devices {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                dir.set("device rules", file, &rule.v1_line())?;
            }
            // Defence in depth: the kernel runs the v2 filter as well as
            // the v1 controller on every device access. The v1 rules are
            // in place, so a filter that cannot be attached is not fatal.
            if let Some(unified) = &self.unified {
                let policy = DevicePolicy::from_rules(&resources.devices)?;
                if let Err(error) = unified.set_device_filter(&policy) {
                    tracing::warn!(%error, "device rules rest on the v1 devices controller alone");
                }
            }
        }
        self.apply(resources)
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        for dir in self.distinct_dirs() {
            dir.write("cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        r.validate()?;
        self.apply_cpu(r)?;
        self.apply_memory(r)?;
        if let Some(limit) = r.pids_limit {
            let dir = self.controller("pids", "--pids-limit")?;
            let value = match limit {
                Limit::Unlimited | Limit::Max(0) => "max".to_owned(),
                Limit::Max(n) => n.to_string(),
            };
            dir.set("--pids-limit", "pids.max", &value)?;
        }
        if let Some(weight) = r.blkio_weight {
            self.apply_blkio(weight)?;
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
        let mut s = Stats::default();
        if let Some(dir) = self.controllers.get("cpuacct") {
            s.cpu_usage_ns = dir.read_u64("cpuacct.usage")?.flatten().unwrap_or(0);
        }
        if let Some(dir) = self.controllers.get("cpu") {
            s.throttled_periods = dir.keyed("cpu.stat", "nr_throttled")?;
            s.throttled_ns = dir.keyed("cpu.stat", "throttled_time")?;
        }
        if let Some(dir) = self.controllers.get("memory") {
            s.memory_usage = dir
                .read_u64("memory.usage_in_bytes")?
                .flatten()
                .unwrap_or(0);
            s.memory_limit = dir.read_u64("memory.limit_in_bytes")?.flatten();
            s.oom_kills = dir.keyed("memory.oom_control", "oom_kill")?;
        }
        if let Some(dir) = self.controllers.get("pids") {
            s.pids_current = dir.read_u64("pids.current")?.flatten().unwrap_or(0);
            s.pids_limit = dir.read_u64("pids.max")?.flatten();
        }
        if let Some(dir) = self.controllers.get("blkio") {
            // The throttle files count I/O whatever the scheduler; the
            // plain ones exist only with CFQ/BFQ.
            for file in [
                "blkio.throttle.io_service_bytes_recursive",
                "blkio.io_service_bytes_recursive",
            ] {
                if let Some(text) = dir.read_opt(file)? {
                    (s.blkio_read_bytes, s.blkio_write_bytes) = blkio_bytes(&text);
                    break;
                }
            }
        }
        Ok(s)
    }

    fn oom_killed(&self) -> Result<bool> {
        let dir = self.controller("memory", "OOM reporting")?;
        Ok(dir.keyed("memory.oom_control", "oom_kill")? > 0)
    }

    fn procs(&self) -> Result<Vec<i32>> {
        self.all_procs()
    }

    fn kill_all(&self, signal: Signal) -> Result<()> {
        common::kill_all(self, signal)
    }

    fn destroy(&self) -> Result<()> {
        common::destroy(self)
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.distinct_dirs().into_iter().map(|d| d.path).collect()
    }
}

impl Teardown for V1Manager {
    fn all_procs(&self) -> Result<Vec<i32>> {
        // The union: a process may have been moved into some hierarchies
        // only, if add_process failed half-way.
        let mut pids = Vec::new();
        for dir in self.distinct_dirs() {
            pids.extend(dir.procs()?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn is_frozen(&self) -> Result<bool> {
        match self.freezer() {
            Some(dir) => Ok(dir
                .read_opt("freezer.state")?
                .is_some_and(|s| s.trim() == "FROZEN")),
            None => Ok(false),
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let dir = self.controller("freezer", "pause")?;
        if !frozen {
            dir.set("pause", "freezer.state", "THAWED")?;
            return wait_until(&dir.path, "thaw", || {
                Ok(dir.read("freezer.state")?.trim() == "THAWED")
            });
        }
        // The v1 freezer can stay FREEZING when tasks fork or exec while
        // it works: write FROZEN again on every poll, and now and then
        // thaw for a moment so stragglers get past fork, as runc does.
        let mut attempt = 0u32;
        let outcome = wait_until(&dir.path, "freeze", || {
            attempt += 1;
            if attempt.is_multiple_of(10) {
                dir.write("freezer.state", "THAWED")?;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            dir.set("pause", "freezer.state", "FROZEN")?;
            Ok(dir.read("freezer.state")?.trim() == "FROZEN")
        });
        if outcome.is_err() {
            // Never leave a container half frozen behind an error.
            let _ = dir.write("freezer.state", "THAWED");
        }
        outcome
    }

    fn kill_at_once(&self) -> Result<bool> {
        match &self.unified {
            Some(dir) if dir.has("cgroup.kill") => {
                dir.write("cgroup.kill", "1")?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn dirs(&self) -> Vec<Dir> {
        self.distinct_dirs()
    }
}

/// Sum the `Read` and `Write` lines of a `blkio.*io_service_bytes*` file.
fn blkio_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_device), Some(op), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let n: u64 = n.parse().unwrap_or(0);
        match op {
            "Read" => read = read.saturating_add(n),
            "Write" => write = write.saturating_add(n),
            _ => {}
        }
    }
    (read, write)
}

#[cfg(test)]
#[path = "v1_tests.rs"]
mod tests;
