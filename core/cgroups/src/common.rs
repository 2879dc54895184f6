//! Helpers both managers share: typed access to one cgroup directory,
//! parsing of control files, signalling and waiting.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::device_filter::DevicePolicy;
use crate::error::{CgroupError, Result};
use crate::fs::CgroupFs;

/// How long teardown and the freezer wait for the kernel.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One cgroup directory in one hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    pub(crate) fs: Arc<dyn CgroupFs>,
    pub(crate) path: PathBuf,
}

impl Dir {
    pub(crate) fn new(fs: Arc<dyn CgroupFs>, path: PathBuf) -> Self {
        Self { fs, path }
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.fs.exists(&self.file(name))
    }

    pub(crate) fn read(&self, name: &str) -> Result<String> {
        let path = self.file(name);
        self.fs.read(&path).map_err(|source| CgroupError::Io {
            op: "read",
            path,
            source,
        })
    }

    /// The file's content, or `None` when the file does not exist (the
    /// controller is not there), so stats can be partial.
    pub(crate) fn read_opt(&self, name: &str) -> Result<Option<String>> {
        match self.fs.read(&self.file(name)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CgroupError::Io {
                op: "read",
                path: self.file(name),
                source,
            }),
        }
    }

    pub(crate) fn write(&self, name: &str, value: &str) -> Result<()> {
        tracing::debug!(path = %self.path.display(), file = name, value, "cgroup write");
        self.fs
            .write(&self.file(name), value)
            .map_err(|source| CgroupError::Write {
                file: name.to_owned(),
                value: value.to_owned(),
                path: self.path.clone(),
                source,
            })
    }

    /// Write a resource setting, or explain which controller is missing
    /// when its control file is not there.
    pub(crate) fn set(&self, setting: &'static str, name: &str, value: &str) -> Result<()> {
        if !self.has(name) {
            return Err(CgroupError::Unsupported {
                setting,
                reason: format!(
                    "{name} is missing in {}: its controller is not available to this \
                     cgroup (on cgroup v2, enable it in cgroup.subtree_control of the parents)",
                    self.path.display()
                ),
            });
        }
        self.write(name, value)
    }

    /// Make `policy`'s program the device filter of this v2 directory.
    pub(crate) fn set_device_filter(&self, policy: &DevicePolicy) -> Result<()> {
        tracing::debug!(path = %self.path.display(), "attaching the device filter");
        self.fs
            .set_device_filter(&self.path, &policy.program())
            .map_err(|source| CgroupError::DeviceFilter {
                path: self.path.clone(),
                source,
            })
    }

    pub(crate) fn exists(&self) -> bool {
        self.fs.exists(&self.path)
    }

    /// A single number (or `max`, as `None`) from a file.
    pub(crate) fn read_u64(&self, name: &str) -> Result<Option<Option<u64>>> {
        let Some(text) = self.read_opt(name)? else {
            return Ok(None);
        };
        parse_limit(&text)
            .map(Some)
            .ok_or_else(|| parse_error(&self.file(name), &text))
    }

    /// A `key value` line from a flat keyed file (`cpu.stat`,
    /// `memory.events`, `memory.oom_control`); 0 when absent.
    pub(crate) fn keyed(&self, name: &str, key: &str) -> Result<u64> {
        Ok(self
            .read_opt(name)?
            .and_then(|text| keyed_value(&text, key))
            .unwrap_or(0))
    }

    /// The pids in `cgroup.procs`; none when the directory is gone.
    pub(crate) fn procs(&self) -> Result<Vec<i32>> {
        let Some(text) = self.read_opt("cgroup.procs")? else {
            return Ok(Vec::new());
        };
        text.split_whitespace()
            .map(|p| {
                p.parse()
                    .map_err(|_| parse_error(&self.file("cgroup.procs"), &text))
            })
            .collect()
    }

    /// Create this directory and any missing parents, calling `init` on
    /// each directory that this call created (parents before children).
    pub(crate) fn create(&self, init: impl Fn(&Dir) -> Result<()>) -> Result<()> {
        let mut missing: Vec<&Path> = self
            .path
            .ancestors()
            .take_while(|p| !self.fs.exists(p))
            .collect();
        missing.reverse();
        for path in missing {
            self.fs.mkdir(path).map_err(|source| CgroupError::Io {
                op: "mkdir",
                path: path.to_path_buf(),
                source,
            })?;
            init(&Dir::new(self.fs.clone(), path.to_path_buf()))?;
        }
        Ok(())
    }

    /// Remove this directory; gone already is fine. The kernel may answer
    /// EBUSY for a moment after the last process left, so this retries.
    pub(crate) fn remove(&self) -> Result<()> {
        let start = Instant::now();
        loop {
            match self.fs.rmdir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e)
                    if e.raw_os_error() == Some(libc_ebusy())
                        && start.elapsed() < SETTLE_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(CgroupError::Io {
                        op: "rmdir",
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
    }
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

pub(crate) fn parse_error(path: &Path, text: &str) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.trim().to_owned(),
    }
}

/// `max` (or v1's "unlimited" huge values) is `Some(None)`; a number is
/// `Some(Some(n))`.
pub(crate) fn parse_limit(text: &str) -> Option<Option<u64>> {
    let text = text.trim();
    if text == "max" || text == "-1" {
        return Some(None);
    }
    let n: u64 = text.parse().ok()?;
    // v1 reports "no limit" as the largest page-aligned i64.
    Some((n < ((i64::MAX as u64) & !0xfff)).then_some(n))
}

pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

/// What `kill_all` and `destroy` need from a manager, so both
/// hierarchies share one teardown procedure.
pub(crate) trait Teardown {
    fn all_procs(&self) -> Result<Vec<i32>>;
    fn is_frozen(&self) -> Result<bool>;
    fn set_frozen(&self, frozen: bool) -> Result<()>;
    /// Kill every process in one step (v2 `cgroup.kill`), if possible.
    fn kill_at_once(&self) -> Result<bool>;
    fn dirs(&self) -> Vec<Dir>;
}

/// Signal every process. Freezing first means a process cannot fork a
/// child between our read of `cgroup.procs` and the signal, so a fork
/// bomb cannot outrun us. A paused cgroup stays paused, except that
/// SIGKILL must thaw it for the processes to die.
pub(crate) fn kill_all(t: &dyn Teardown, signal: Signal) -> Result<()> {
    kill_all_with(t, signal, true)
}

fn kill_all_with(t: &dyn Teardown, signal: Signal, at_once: bool) -> Result<()> {
    if at_once && signal == Signal::SIGKILL && t.kill_at_once()? {
        return Ok(());
    }
    let was_frozen = t.is_frozen()?;
    t.set_frozen(true)?;
    let sent = t.all_procs().and_then(|pids| signal_all(&pids, signal));
    if !was_frozen || signal == Signal::SIGKILL {
        t.set_frozen(false)?;
    }
    sent
}

/// Kill what is left, wait until no process remains, remove every
/// directory. Idempotent: a cgroup that is gone is destroyed.
pub(crate) fn destroy(t: &dyn Teardown) -> Result<()> {
    let dirs = t.dirs();
    let Some(first) = dirs.first() else {
        return Ok(());
    };
    let mut round = 0u32;
    wait_until(&first.path, "become empty", || {
        if t.all_procs()?.is_empty() {
            return Ok(true);
        }
        // Alternate: `cgroup.kill` reaches only processes in the unified
        // hierarchy, signalling by pid reaches the rest.
        kill_all_with(t, Signal::SIGKILL, round.is_multiple_of(2))?;
        round += 1;
        Ok(false)
    })?;
    for dir in &dirs {
        dir.remove()?;
    }
    tracing::debug!(path = %first.path.display(), "cgroup destroyed");
    Ok(())
}

/// Send `signal` to each pid; a process that already exited is fine.
pub(crate) fn signal_all(pids: &[i32], signal: Signal) -> Result<()> {
    for &pid in pids {
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::Signal {
                    pid,
                    signal: signal as i32,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Poll `done` until it holds or [`SETTLE_TIMEOUT`] passes.
pub(crate) fn wait_until(
    path: &Path,
    what: &'static str,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    while !done()? {
        if start.elapsed() > SETTLE_TIMEOUT {
            return Err(CgroupError::Timeout {
                path: path.to_path_buf(),
                what,
                waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_keys() {
        assert_eq!(parse_limit("max\n"), Some(None));
        assert_eq!(parse_limit("9223372036854771712\n"), Some(None));
        assert_eq!(parse_limit("33554432\n"), Some(Some(33_554_432)));
        assert_eq!(parse_limit("x"), None);
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(oom, "oom_kill"), Some(3));
        assert_eq!(keyed_value(oom, "oom"), None);
    }
}
