//! Applying [`Mount`]s: the kernel seam ([`Mounter`]), its nix
//! implementation, and helpers that turn mount(8)-style options into
//! mount(2) calls.
//!
//! The kernel copies at most one page (4096 bytes on the smallest pages) of
//! mount data. An overlay of 100+ layers named by absolute paths does not
//! fit, so when the data is too long its paths are rewritten relative to
//! their common directory and the mount is made from a thread that has its
//! own working directory there (`unshare(CLONE_FS)` + `chdir`), as
//! containerd's mount helper does with a child process. The process-wide
//! working directory is never touched.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::Mount;

/// The smallest page size Linux runs on; mount data must fit in it with
/// its terminating NUL.
const MOUNT_DATA_MAX: usize = 4095;

/// What went wrong while mounting or unmounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mounting {fs_type} {device} on {target}: {err}")]
    Mount {
        fs_type: String,
        device: PathBuf,
        target: PathBuf,
        #[source]
        err: io::Error,
    },
    #[error("unmounting {target}: {err}; is a process still using it?")]
    Unmount {
        target: PathBuf,
        #[source]
        err: io::Error,
    },
    #[error(
        "mount options for {target} are {len} bytes even with relative paths; \
         the kernel takes at most {MOUNT_DATA_MAX}: use fewer layers"
    )]
    OptionsTooLong { target: PathBuf, len: usize },
}

/// One mount(2) call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountCall {
    pub source: Option<PathBuf>,
    pub target: PathBuf,
    pub fs_type: Option<String>,
    pub flags: MsFlags,
    pub data: Option<String>,
    /// Make the call with this working directory (relative paths in `data`).
    pub cwd: Option<PathBuf>,
}

/// The kernel's mount calls, behind a trait so that the planning logic can
/// be tested without root.
pub trait Mounter: Send + Sync {
    fn mount(&self, call: &MountCall) -> io::Result<()>;
    /// `detach` is MNT_DETACH: unmount lazily once no longer busy.
    fn unmount(&self, target: &Path, detach: bool) -> io::Result<()>;
}

/// The real [`Mounter`], through nix.
#[derive(Debug, Clone, Copy, Default)]
pub struct NixMounter;

impl Mounter for NixMounter {
    fn mount(&self, call: &MountCall) -> io::Result<()> {
        let Some(dir) = &call.cwd else {
            return raw_mount(call);
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                // This thread gets its own cwd so the chdir cannot race
                // with anything else in the process.
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
                nix::unistd::chdir(dir.as_path())?;
                raw_mount(call)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("mount thread panicked")))
        })
    }

    fn unmount(&self, target: &Path, detach: bool) -> io::Result<()> {
        let flags = if detach {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        Ok(nix::mount::umount2(target, flags)?)
    }
}

fn raw_mount(call: &MountCall) -> io::Result<()> {
    Ok(nix::mount::mount(
        call.source.as_deref(),
        call.target.as_path(),
        call.fs_type.as_deref(),
        call.flags,
        call.data.as_deref(),
    )?)
}

/// Mount `mounts` in order on `target` (each on its own sub-target, if
/// set). On failure, what was already mounted is unmounted again.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    mount_all_with(&NixMounter, mounts, target).map(|_| ())
}

/// Unmount the top-most mount on `target`.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    NixMounter
        .unmount(target, false)
        .map_err(|err| MountError::Unmount {
            target: target.to_path_buf(),
            err,
        })
}

/// Whether something is mounted on exactly `target` in this process's
/// mount table (whose escapes, `\040` for a space, are undone first).
pub fn is_mounted(target: &Path) -> bool {
    berth_mountinfo::is_mount_point(&berth_mountinfo::read_own(), target)
}

/// Like [`mount_all`] through any [`Mounter`]; returns the mounted targets,
/// in mount order (unmount them in reverse).
pub fn mount_all_with(
    mounter: &dyn Mounter,
    mounts: &[Mount],
    target: &Path,
) -> Result<Vec<PathBuf>, MountError> {
    let mut done: Vec<PathBuf> = Vec::new();
    for m in mounts {
        let result = plan(m, target).and_then(|calls| {
            for call in &calls {
                if let Err(err) = mounter.mount(call) {
                    // A bind whose read-only remount failed is mounted
                    // writable: take it down too.
                    if call.flags.contains(MsFlags::MS_REMOUNT) {
                        let _ = mounter.unmount(&call.target, true);
                    }
                    return Err(MountError::Mount {
                        fs_type: m.fs_type.clone(),
                        device: m.source.clone(),
                        target: call.target.clone(),
                        err,
                    });
                }
            }
            Ok(calls)
        });
        match result {
            Ok(calls) => {
                if let Some(c) = calls.first() {
                    done.push(c.target.clone());
                }
            }
            Err(e) => {
                for t in done.iter().rev() {
                    if let Err(err) = mounter.unmount(t, true) {
                        tracing::warn!(target = %t.display(), %err, "rolling back a mount failed");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// Mounts that are unmounted when dropped, so that a failing test or an
/// early return never leaks them.
#[must_use = "the mounts are unmounted when the guard is dropped"]
pub struct MountGuard {
    targets: Vec<PathBuf>,
}

impl MountGuard {
    /// [`mount_all`], returning a guard.
    pub fn mount(mounts: &[Mount], target: &Path) -> Result<Self, MountError> {
        Ok(MountGuard {
            targets: mount_all_with(&NixMounter, mounts, target)?,
        })
    }

    /// Unmount now, reporting failure (the drop only logs it).
    pub fn unmount(mut self) -> Result<(), MountError> {
        while let Some(t) = self.targets.pop() {
            unmount(&t)?;
        }
        Ok(())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        while let Some(t) = self.targets.pop() {
            if let Err(e) = unmount(&t) {
                tracing::warn!(error = %e, "unmount failed; detaching lazily");
                let _ = NixMounter.unmount(&t, true);
            }
        }
    }
}

/// The mount(2) calls that make `m` on `target`.
pub fn plan(m: &Mount, target: &Path) -> Result<Vec<MountCall>, MountError> {
    let target = match &m.target {
        Some(sub) => target.join(sub),
        None => target.to_path_buf(),
    };
    let (flags, data) = parse_options(&m.options);
    if m.fs_type == "bind" || flags.contains(MsFlags::MS_BIND) {
        let bind = flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
        let mut calls = vec![MountCall {
            source: Some(m.source.clone()),
            target: target.clone(),
            fs_type: None,
            flags: MsFlags::MS_BIND | bind,
            data: None,
            cwd: None,
        }];
        // A bind mount ignores every flag but MS_REC; read-only and the
        // like need a remount of the new bind.
        let rest = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !rest.is_empty() {
            calls.push(MountCall {
                source: None,
                target,
                fs_type: None,
                flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest,
                data: None,
                cwd: None,
            });
        }
        return Ok(calls);
    }
    let (data, cwd) = if data.len() > MOUNT_DATA_MAX {
        let (short, dir) = compact_paths(&data);
        if short.len() > MOUNT_DATA_MAX {
            return Err(MountError::OptionsTooLong {
                target,
                len: short.len(),
            });
        }
        (short, dir)
    } else {
        (data, None)
    };
    Ok(vec![MountCall {
        source: Some(m.source.clone()),
        target,
        fs_type: Some(m.fs_type.clone()),
        flags,
        data: (!data.is_empty()).then_some(data),
        cwd,
    }])
}

/// Split mount(8) options into mount(2) flags and file-system data.
fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, f) = match o.as_str() {
            "ro" => (true, MsFlags::MS_RDONLY),
            "rw" => (false, MsFlags::MS_RDONLY),
            "bind" => (true, MsFlags::MS_BIND),
            "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
            "nosuid" => (true, MsFlags::MS_NOSUID),
            "suid" => (false, MsFlags::MS_NOSUID),
            "nodev" => (true, MsFlags::MS_NODEV),
            "dev" => (false, MsFlags::MS_NODEV),
            "noexec" => (true, MsFlags::MS_NOEXEC),
            "exec" => (false, MsFlags::MS_NOEXEC),
            "noatime" => (true, MsFlags::MS_NOATIME),
            "nodiratime" => (true, MsFlags::MS_NODIRATIME),
            "relatime" => (true, MsFlags::MS_RELATIME),
            "sync" => (true, MsFlags::MS_SYNCHRONOUS),
            "async" => (false, MsFlags::MS_SYNCHRONOUS),
            "defaults" => (true, MsFlags::empty()),
            _ => {
                data.push(o.as_str());
                continue;
            }
        };
        if set {
            flags |= f;
        } else {
            flags -= f;
        }
    }
    (flags, data.join(","))
}

/// Rewrite the paths of `lowerdir=`, `upperdir=` and `workdir=` relative to
/// their deepest common directory, which is returned.
fn compact_paths(data: &str) -> (String, Option<PathBuf>) {
    const PATH_KEYS: [&str; 3] = ["lowerdir=", "upperdir=", "workdir="];
    let path_values = |opt: &str| -> Option<Vec<PathBuf>> {
        let v = PATH_KEYS.iter().find_map(|k| opt.strip_prefix(k))?;
        Some(v.split(':').map(PathBuf::from).collect())
    };
    let mut common: Option<PathBuf> = None;
    for opt in data.split(',') {
        for p in path_values(opt).unwrap_or_default() {
            let Some(parent) = p.parent().filter(|_| p.is_absolute()) else {
                // A relative path already depends on the cwd: leave it all.
                return (data.to_owned(), None);
            };
            common = Some(match common {
                None => parent.to_path_buf(),
                Some(c) => c
                    .components()
                    .zip(parent.components())
                    .take_while(|(a, b)| a == b)
                    .map(|(a, _)| a)
                    .collect(),
            });
        }
    }
    let Some(common) = common else {
        return (data.to_owned(), None);
    };
    let rel = |p: &Path| -> String {
        p.strip_prefix(&common)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let out: Vec<String> = data
        .split(',')
        .map(|opt| match (opt.split_once('='), path_values(opt)) {
            (Some((k, _)), Some(paths)) => {
                let v: Vec<String> = paths.iter().map(|p| rel(p)).collect();
                format!("{k}={}", v.join(":"))
            }
            _ => opt.to_owned(),
        })
        .collect();
    (out.join(","), Some(common))
}

#[cfg(test)]
#[path = "mount_tests.rs"]
mod tests;
