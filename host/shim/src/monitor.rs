//! The setup phase: one run of the container from cgroup to started
//! process, then the hand-off to the watch phase.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use anyhow::Context;
use berth_cgroups::{CgroupManager, Layout, Limit, Resources};
use berth_runtime::shim_files::{
    ExitRecord, RESTART_STATE, RestartState, ShimConfig, read_restart_state, write_atomic_unsynced,
};
use berth_runtime::{Container, ExitStatus, Stdio};
use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::record::{failed, finish, monotonic_ms, save_restarts};
use crate::streams::{Output, Streams};
use crate::watch::Watch;

fn resources(c: &ShimConfig, spec: &Spec) -> Resources {
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
        devices: berth_runtime::devices::from_spec(spec),
    }
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")
}

/// The attach socket, listening (non-blocking, for the watch phase's
/// poll) and only for root.
fn listen(dir: &Path) -> anyhow::Result<OwnedFd> {
    let at = File::open(dir).context("opening the container directory")?;
    let path = berth_runtime::attach::socket_path(at.as_raw_fd());
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context("removing a stale attach socket");
        }
        _ => {}
    }
    let listener = UnixListener::bind(&path).context("binding the attach socket")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .context("restricting the attach socket to root")?;
    listener
        .set_nonblocking(true)
        .context("making the attach socket non-blocking")?;
    Ok(listener.into())
}

/// Start a run of the container in `dir`: the first one (`again` is
/// `None`), or a restart, whose network namespace the shim kept (`Some(true)`)
/// or not. A run that starts continues in the watch phase; one that cannot
/// start ends the shim with its `exit.json`.
pub fn run(dir: &Path, again: Option<bool>) -> anyhow::Result<()> {
    let mut restarts = match again {
        None => {
            // Neither file needs an fsync: a power cut ends this shim, and
            // a missing or empty shim.pid reads as a shim that is gone; the
            // fresh restart state reads the same as no file.
            write_atomic_unsynced(
                &dir.join("shim.pid"),
                std::process::id().to_string().as_bytes(),
            )
            .context("writing shim.pid")?;
            let fresh = RestartState::default();
            write_atomic_unsynced(&dir.join(RESTART_STATE), &serde_json::to_vec(&fresh)?)
                .context("writing restart.json")?;
            fresh
        }
        Some(_) => read_restart_state(dir),
    };
    let config = crate::record::config(dir)?;
    let mut spec = Spec::load(dir.join("config.json")).context("reading config.json")?;
    if again == Some(true) {
        drop_network_namespace(&mut spec);
    }
    // Bound before the container is created, so that a client connecting
    // once the daemon sees the pid file is queued before the container
    // starts and misses none of its output.
    let mut attach = None;
    if config.tty || config.open_stdin {
        match listen(dir) {
            Ok(l) => attach = Some(l),
            Err(e) => return finish(dir, &failed(125, format!("{e:#}")), config.auto_remove),
        }
    }
    let layout = Layout::detect().context("detecting the cgroup layout")?;
    let cgroup = berth_cgroups::manager_for(
        &layout,
        &berth_cgroups::container_path(&config.cgroup_parent, &config.id),
    );
    if let Err(e) = cgroup.create(&resources(&config, &spec)) {
        return finish(
            dir,
            &failed(125, format!("setting up the cgroup: {e}")),
            config.auto_remove,
        );
    }
    let setup = Setup {
        dir,
        config: &config,
        spec: &spec,
        cgroup: cgroup.as_ref(),
        first: again.is_none(),
    };
    match setup.start(&mut restarts, &mut attach) {
        Ok((container, streams, netns_kept)) => {
            let watch = Watch {
                pid: container.pid(),
                streams,
                started_ms: monotonic_ms(),
                netns_kept: netns_kept || again == Some(true),
            };
            // The handle kills its process when dropped; from here on the
            // watch phase owns the process (as our child, across the exec).
            std::mem::forget(container);
            crate::watch::hand_off(dir, watch)
        }
        Err(exit) => {
            if let Err(e) = cgroup.destroy() {
                eprintln!("berth-shim: removing the cgroup: {e}");
            }
            let done = finish(dir, &exit, config.auto_remove);
            if let Some(listener) = attach {
                crate::client::tell_queued(listener, config.open_stdin, &exit);
            }
            done
        }
    }
}

struct Setup<'a> {
    dir: &'a Path,
    config: &'a ShimConfig,
    spec: &'a Spec,
    cgroup: &'a dyn CgroupManager,
    first: bool,
}

impl Setup<'_> {
    /// Create and start the container: the handle, what the watch phase
    /// pumps, and whether the shim now keeps its network namespace.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the exit record the shim writes"
    )]
    fn start(
        &self,
        restarts: &mut RestartState,
        attach: &mut Option<OwnedFd>,
    ) -> Result<(Container, Streams, bool), ExitRecord> {
        let fail = |e: anyhow::Error| failed(125, format!("{e:#}"));
        let (stdio, output, stdin) = if self.config.tty {
            // The terminal takes the place of all three (see below).
            (Stdio::default(), None, None)
        } else {
            let (out_r, out_w) = pipe().map_err(fail)?;
            let (err_r, err_w) = pipe().map_err(fail)?;
            let (in_r, in_w) = match self.config.open_stdin {
                true => pipe().map(|(r, w)| (Some(r), Some(w))).map_err(fail)?,
                false => (None, None),
            };
            let stdio = Stdio {
                stdin: in_r,
                stdout: Some(out_w),
                stderr: Some(err_w),
            };
            let output = Output::Pipes {
                stdout: out_r,
                stderr: err_r,
            };
            (stdio, Some(output), in_w)
        };
        let mut container = Container::create(&self.config.id, self.spec, stdio)
            .map_err(|e| failed(e.exit_code(), e.to_string()))?;
        let output = match (output, container.take_terminal()) {
            (Some(pipes), _) => pipes,
            (None, Some(master)) => {
                if let Some((rows, cols)) = self.config.console_size
                    && let Err(e) = berth_runtime::resize_terminal(master.as_fd(), rows, cols)
                {
                    eprintln!("berth-shim: sizing the terminal: {e}");
                }
                Output::Terminal(master)
            }
            (None, None) => {
                let _ = container.kill(Signal::SIGKILL);
                let _ = container.wait();
                return Err(failed(
                    125,
                    "the container has no terminal: config.json lacks process.terminal".into(),
                ));
            }
        };
        let abandon = |mut c: Container, code: i32, why: String| {
            let _ = c.kill(Signal::SIGKILL);
            let _ = c.wait();
            failed(code, why)
        };
        if let Err(e) = self.cgroup.add_process(container.pid()) {
            return Err(abandon(
                container,
                125,
                format!("placing the container in its cgroup: {e}"),
            ));
        }
        // No fsync: a power cut ends the process it names (see shim.pid).
        if let Err(e) = write_atomic_unsynced(
            &self.dir.join("pid"),
            container.pid().to_string().as_bytes(),
        ) {
            return Err(abandon(
                container,
                125,
                format!("writing the pid file: {e}"),
            ));
        }
        if restarts.restarting {
            restarts.restarting = false;
            restarts.count += 1;
            if let Err(e) = save_restarts(self.dir, restarts) {
                eprintln!("berth-shim: {e:#}");
            }
        }
        let mut kept = false;
        if self.first {
            // EOF without a byte means the daemon gave up on this container.
            let mut go = [0u8; 1];
            let got = File::open(self.dir.join("start"))
                .and_then(|mut f| f.read(&mut go))
                .unwrap_or(0);
            if got == 0 {
                return Err(abandon(
                    container,
                    125,
                    "berthd did not start the container".into(),
                ));
            }
            kept = self.keep_network_namespace(&container);
        }
        if let Err(e) = container.start() {
            return Err(match container.wait() {
                // Killed after berthd let it start but before its command
                // ran (a `kill` just after `run -d` returned): it ended by
                // that signal, which is what Docker reports, not a failure.
                Ok(ExitStatus::Signaled(sig)) => ExitRecord {
                    code: 128 + sig,
                    oom_killed: false,
                    finished_at: crate::record::now(),
                    error: None,
                },
                _ => failed(e.exit_code(), e.to_string()),
            });
        }
        let streams = Streams {
            output,
            stdin,
            attach: attach.take(),
        };
        Ok((container, streams, kept))
    }

    /// Move the shim into the container's network namespace (the daemon
    /// has wired it by now) so that restarts inherit it instead of making
    /// a new one: the interfaces, addresses and routes survive a restart,
    /// and the namespace lives exactly as long as the shim. Only for
    /// containers that may restart.
    fn keep_network_namespace(&self, container: &Container) -> bool {
        let has_own = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        if !has_own || self.config.restart == Default::default() {
            return false;
        }
        let joined = File::open(container.net_ns_path())
            .map_err(|e| e.to_string())
            .and_then(|ns| {
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| e.to_string())
            });
        match joined {
            Ok(()) => true,
            Err(e) => {
                eprintln!("berth-shim: keeping the network namespace for restarts: {e}");
                false
            }
        }
    }
}

/// A restart joins the namespace the shim lives in rather than a new one.
fn drop_network_namespace(spec: &mut Spec) {
    if let Some(mut linux) = spec.linux().clone() {
        let kept = linux.namespaces().clone().map(|ns| {
            ns.into_iter()
                .filter(|n| n.typ() != LinuxNamespaceType::Network)
                .collect::<Vec<_>>()
        });
        linux.set_namespaces(kept);
        spec.set_linux(Some(linux));
    }
}
