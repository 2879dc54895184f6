//! The shim's job, start to end: runs of the container, restarted as the
//! policy says, until one is not.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_cgroups::{CgroupManager, Layout, Limit, Resources};
use berth_runtime::logfile::LogWriter;
use berth_runtime::shim_files::{
    Backoff, ExitRecord, MANUAL_STOP, RESTART_STATE, RestartState, ShimConfig, write_atomic,
};
use berth_runtime::{Container, Stdio};
use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn resources(c: &ShimConfig) -> Resources {
    Resources {
        cpus: c.cpus,
        cpu_shares: c.cpu_shares,
        cpuset_cpus: c.cpuset_cpus.clone(),
        cpuset_mems: None,
        memory: c.memory.map(Limit::from_docker),
        memory_swap: c.memory_swap.map(Limit::from_docker),
        memory_reservation: c.memory_reservation.map(Limit::from_docker),
        pids_limit: c.pids_limit.map(Limit::from_docker),
        blkio_weight: c.blkio_weight,
    }
}

fn failed(code: i32, error: String) -> ExitRecord {
    ExitRecord {
        code,
        oom_killed: false,
        finished_at: now(),
        error: Some(error),
    }
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating an output pipe")
}

/// The monitor's state across runs.
struct Monitor<'a> {
    dir: &'a Path,
    config: ShimConfig,
    spec: Spec,
    cgroup: Box<dyn CgroupManager>,
    log: LogWriter,
    restarts: RestartState,
}

/// Run the container described in `dir`, and its restarts, to the end.
/// Every way it ends is an `exit.json` the daemon can report.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    write_atomic(
        &dir.join("shim.pid"),
        std::process::id().to_string().as_bytes(),
    )
    .context("writing shim.pid")?;
    let config: ShimConfig =
        serde_json::from_slice(&std::fs::read(dir.join("shim.json")).context("reading shim.json")?)
            .context("parsing shim.json")?;
    let spec = Spec::load(dir.join("config.json")).context("reading config.json")?;
    let layout = Layout::detect().context("detecting the cgroup layout")?;
    let cgroup = berth_cgroups::manager_for(
        &layout,
        &berth_cgroups::container_path(&config.cgroup_parent, &config.id),
    );
    let log = LogWriter::open(dir, config.log).context("opening the container log")?;
    let mut m = Monitor {
        dir,
        config,
        spec,
        cgroup,
        log,
        restarts: RestartState::default(),
    };
    m.save_restarts()?;
    let mut backoff = Backoff::default();
    let mut first = true;
    loop {
        let started = Instant::now();
        let exit = m.run_once(first);
        first = false;
        let manual = dir.join(MANUAL_STOP).exists();
        // A command that never ran would fail the same way again.
        let restart = exit.error.is_none()
            && m.config
                .restart
                .should_restart(exit.code, m.restarts.count, manual);
        if !restart {
            return m.finish(&exit);
        }
        m.restarts.restarting = true;
        m.restarts.last_exit = Some(exit.clone());
        m.save_restarts()?;
        if !m.sleep_unless_stopped(backoff.next(started.elapsed())) {
            return m.finish(&exit);
        }
    }
}

impl Monitor<'_> {
    fn save_restarts(&self) -> anyhow::Result<()> {
        write_atomic(
            &self.dir.join(RESTART_STATE),
            &serde_json::to_vec(&self.restarts)?,
        )
        .context("writing restart.json")
    }

    fn finish(&self, exit: &ExitRecord) -> anyhow::Result<()> {
        write_atomic(&self.dir.join("exit.json"), &serde_json::to_vec(exit)?)
            .context("writing exit.json")
    }

    /// Wait out a back-off; false if the user stopped the container meanwhile.
    fn sleep_unless_stopped(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            if self.dir.join(MANUAL_STOP).exists() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    /// One run of the container, from cgroup to exit. The first run waits
    /// for the daemon's go (it wires the network in between); later runs
    /// join the first run's network namespace, which the shim keeps alive
    /// by living in it, so a restart needs no daemon.
    fn run_once(&mut self, first: bool) -> ExitRecord {
        if let Err(e) = self.cgroup.create(&resources(&self.config)) {
            return failed(125, format!("setting up the cgroup: {e}"));
        }
        let exit = self.run_in_cgroup(first);
        if let Err(e) = self.cgroup.destroy() {
            eprintln!("berth-shim: removing the cgroup: {e}");
        }
        exit
    }

    fn run_in_cgroup(&mut self, first: bool) -> ExitRecord {
        let ((out_r, out_w), (err_r, err_w)) = match (pipe(), pipe()) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => return failed(125, format!("{e:#}")),
        };
        let stdio = Stdio {
            stdin: None,
            stdout: Some(out_w),
            stderr: Some(err_w),
        };
        let mut container = match Container::create(&self.config.id, &self.spec, stdio) {
            Ok(c) => c,
            Err(e) => return failed(e.exit_code(), e.to_string()),
        };
        let abandon = |mut c: Container, code: i32, why: String| {
            let _ = c.kill(Signal::SIGKILL);
            let _ = c.wait();
            failed(code, why)
        };
        if let Err(e) = self.cgroup.add_process(container.pid()) {
            return abandon(
                container,
                125,
                format!("placing the container in its cgroup: {e}"),
            );
        }
        if let Err(e) = write_atomic(
            &self.dir.join("pid"),
            container.pid().to_string().as_bytes(),
        ) {
            return abandon(container, 125, format!("writing the pid file: {e}"));
        }
        if self.restarts.restarting {
            self.restarts.restarting = false;
            self.restarts.count += 1;
            if let Err(e) = self.save_restarts() {
                eprintln!("berth-shim: {e:#}");
            }
        }
        if first {
            // EOF without a byte means the daemon gave up on this container.
            let mut go = [0u8; 1];
            let got = File::open(self.dir.join("start"))
                .and_then(|mut f| f.read(&mut go))
                .unwrap_or(0);
            if got == 0 {
                return abandon(container, 125, "berthd did not start the container".into());
            }
            self.keep_network_namespace(&container);
        }
        if let Err(e) = container.start() {
            let _ = container.wait();
            return failed(e.exit_code(), e.to_string());
        }
        crate::pump::pump(out_r, err_r, &mut self.log);
        let status = container.wait();
        let oom_killed = self.cgroup.oom_killed().unwrap_or(false);
        ExitRecord {
            code: status.map(|s| s.code()).unwrap_or(125),
            oom_killed,
            finished_at: now(),
            error: None,
        }
    }

    /// Move the shim into the container's network namespace (the daemon
    /// has wired it by now) and let later runs inherit it instead of
    /// making a new one: the interfaces, addresses and routes survive a
    /// restart, and the namespace lives exactly as long as the shim.
    fn keep_network_namespace(&mut self, container: &Container) {
        let has_own = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        if !has_own || self.config.restart == Default::default() {
            return;
        }
        let joined = File::open(container.net_ns_path())
            .map_err(|e| e.to_string())
            .and_then(|ns| {
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = joined {
            eprintln!("berth-shim: keeping the network namespace for restarts: {e}");
            return;
        }
        if let Some(mut linux) = self.spec.linux().clone() {
            let kept = linux.namespaces().clone().map(|ns| {
                ns.into_iter()
                    .filter(|n| n.typ() != LinuxNamespaceType::Network)
                    .collect::<Vec<_>>()
            });
            linux.set_namespaces(kept);
            self.spec.set_linux(Some(linux));
        }
    }
}
