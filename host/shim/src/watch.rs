//! The watch phase: output into the log, wait, record, and restart by
//! policy (by exec'ing the setup phase again).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use berth_cgroups::Layout;
use berth_runtime::attach;
use berth_runtime::logfile::LogWriter;
use berth_runtime::shim_files::{Backoff, ExitRecord, MANUAL_STOP, read_restart_state};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::record::{finish, monotonic_ms, now, save_restarts};
use crate::streams::Streams;

/// What the setup phase hands over.
pub struct Watch {
    pub pid: i32,
    pub streams: Streams,
    pub started_ms: u64,
    /// The shim lives in the container's network namespace.
    pub netns_kept: bool,
}

impl Watch {
    /// `PID STARTED_MS kept|fresh` and the streams' `key=FD` arguments.
    pub fn from_args(args: &[String]) -> Option<Watch> {
        let [pid, started, netns, fds @ ..] = args else {
            return None;
        };
        Some(Watch {
            pid: pid.parse().ok()?,
            started_ms: started.parse().ok()?,
            netns_kept: match netns.as_str() {
                "kept" => true,
                "fresh" => false,
                _ => return None,
            },
            streams: Streams::from_args(fds)?,
        })
    }
}

fn netns_arg(kept: bool) -> &'static str {
    if kept { "kept" } else { "fresh" }
}

/// Continue in a fresh image of this binary; if the exec fails, here.
pub fn hand_off(dir: &Path, w: Watch) -> anyhow::Result<()> {
    if w.streams.keep_across_exec().is_ok() {
        let err = std::process::Command::new("/proc/self/exe")
            .arg0("berth-shim")
            .arg("--dir")
            .arg(dir)
            .arg("--watch")
            .arg(w.pid.to_string())
            .arg(w.started_ms.to_string())
            .arg(netns_arg(w.netns_kept))
            .args(w.streams.to_args())
            .exec();
        eprintln!("berth-shim: exec of the watch phase failed ({err}); watching in place");
    }
    run(dir, w)
}

fn wait_for(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("berth-shim: waiting for the container: {e}");
                return 125;
            }
        }
    }
}

/// Watch the started run to its end, then restart or finish.
pub fn run(dir: &Path, w: Watch) -> anyhow::Result<()> {
    let config = crate::record::config(dir)?;
    let attached = match LogWriter::open(dir, config.log) {
        Ok(mut log) => crate::pump::pump(w.streams, &config, Some(&mut log)),
        Err(e) => {
            // Without a log the output still reaches an attached client.
            eprintln!("berth-shim: opening the container log: {e}");
            crate::pump::pump(w.streams, &config, None)
        }
    };
    let code = wait_for(w.pid);
    // Told once exit.json (or the restart state) says how the run ended.
    let tell = |attached: Option<crate::client::Client>| {
        if let Some(mut client) = attached {
            let _ = client.send(attach::EXIT, code.to_string().as_bytes());
        }
    };
    let ran = Duration::from_millis(monotonic_ms().saturating_sub(w.started_ms));
    let cgroup = Layout::detect().map(|layout| {
        berth_cgroups::manager_for(
            &layout,
            &berth_cgroups::container_path(&config.cgroup_parent, &config.id),
        )
    });
    let oom_killed = match &cgroup {
        Ok(c) => {
            let oom = c.oom_killed().unwrap_or(false);
            if let Err(e) = c.destroy() {
                eprintln!("berth-shim: removing the cgroup: {e}");
            }
            oom
        }
        Err(e) => {
            eprintln!("berth-shim: detecting the cgroup layout: {e}");
            false
        }
    };
    let exit = ExitRecord {
        code,
        oom_killed,
        finished_at: now(),
        error: None,
    };
    let mut restarts = read_restart_state(dir);
    let manual = dir.join(MANUAL_STOP).exists();
    if !config.restart.should_restart(code, restarts.count, manual) {
        if config.tty || config.open_stdin {
            let _ = std::fs::remove_file(dir.join(attach::SOCKET));
        }
        let done = finish(dir, &exit, config.auto_remove);
        tell(attached);
        return done;
    }
    let mut backoff = Backoff::resume(
        (restarts.backoff_ms > 0).then(|| Duration::from_millis(restarts.backoff_ms)),
    );
    let delay = backoff.next(ran);
    restarts.restarting = true;
    restarts.last_exit = Some(exit.clone());
    restarts.backoff_ms = delay.as_millis() as u64;
    save_restarts(dir, &restarts)?;
    tell(attached);
    if !sleep_unless_stopped(dir, delay) {
        return finish(dir, &exit, config.auto_remove);
    }
    let err = std::process::Command::new("/proc/self/exe")
        .arg0("berth-shim")
        .arg("--dir")
        .arg(dir)
        .arg("--again")
        .arg(netns_arg(w.netns_kept))
        .exec();
    eprintln!("berth-shim: exec of the next run failed ({err}); restarting in place");
    crate::monitor::run(dir, Some(w.netns_kept)).context("restarting in place")
}

/// Wait out a back-off; false if the user stopped the container meanwhile.
fn sleep_unless_stopped(dir: &Path, delay: Duration) -> bool {
    let until = monotonic_ms() + delay.as_millis() as u64;
    loop {
        if dir.join(MANUAL_STOP).exists() {
            return false;
        }
        let left = until.saturating_sub(monotonic_ms());
        if left == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(left.min(50)));
    }
}
