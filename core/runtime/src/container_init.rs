//! A running container's init process, held by a pidfd and checked to be
//! the container's before anything joins it, reads through it or signals it.
//!
//! The daemon learns the init's pid from the file its monitor writes. A pid
//! is reused once its process dies and is reaped, and a file is only a
//! file: by the time it is read, the number in it may name a host process,
//! and joining that process's namespaces (or reading `/proc/PID/root`)
//! would run a command on, or copy files from, the host.
//! [`ContainerInit::open`] first takes a pidfd, which names one process
//! for good whatever becomes of its number; then checks what the number
//! names — a member of the container's cgroup, in none of our namespaces
//! where the spec gives the container its own — and then that the pidfd's
//! process is still alive, so that what was checked was that process.
//! From there on `setns`, signals and the root directory go through the
//! pidfd, or are re-checked against it (as runc and containerd do).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use berth_cgroups::CgroupManager;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::RuntimeError;

/// The namespaces by their `/proc/PID/ns` name and `setns` flag.
pub(crate) const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn proc_name(typ: LinuxNamespaceType) -> Option<&'static str> {
    Some(match typ {
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Mount => "mnt",
        _ => return None,
    })
}

/// A running container's init, verified; see the module doc.
#[derive(Debug)]
pub struct ContainerInit {
    pid: i32,
    pidfd: OwnedFd,
}

impl ContainerInit {
    /// The process `pid` (as read from the container's pid file), if it is
    /// the init of the container whose cgroup is `cgroup` and whose spec is
    /// `spec`: a member of that cgroup, and not in our mount namespace nor
    /// in any other of ours (cgroup aside) that the spec gives the
    /// container its own of.
    pub fn open(
        pid: i32,
        cgroup: &dyn CgroupManager,
        spec: &Spec,
    ) -> Result<ContainerInit, RuntimeError> {
        let not_it = |reason: String| RuntimeError::NotTheContainer { pid, reason };
        if pid <= 0 {
            return Err(not_it("no such process".into()));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::ESRCH) => not_it("the process has ended".into()),
                _ => RuntimeError::Sys {
                    what: "pidfd_open on the container's init",
                    err,
                },
            });
        }
        let init = ContainerInit {
            pid,
            // SAFETY: the kernel just gave us this fd; nothing else owns it.
            pidfd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        };
        let members = cgroup.procs().map_err(|e| RuntimeError::Sys {
            what: "listing the container's cgroup",
            err: std::io::Error::other(e.to_string()),
        })?;
        if !members.contains(&pid) {
            return Err(not_it("it is not in the container's cgroup".into()));
        }
        let own = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .filter_map(|n| proc_name(n.typ()))
            // The init enters its cgroup namespace only just before its
            // execve: an exec right after the start may find it in ours.
            .filter(|name| *name != "cgroup");
        // The container always has a mount namespace of its own.
        for name in std::iter::once("mnt").chain(own) {
            if init.shares(name)? {
                return Err(not_it(format!("it is in the host's {name} namespace")));
            }
        }
        init.alive()?;
        Ok(init)
    }

    /// The host pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd, for `setns` (which takes several namespaces from it at once).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Whether the init is in our namespace `name` (`mnt`, `net`, …).
    fn shares(&self, name: &str) -> Result<bool, RuntimeError> {
        let theirs = format!("/proc/{}/ns/{name}", self.pid);
        let theirs = std::fs::metadata(&theirs).map_err(|err| match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => RuntimeError::NotTheContainer {
                pid: self.pid,
                reason: "the process has ended".into(),
            },
            _ => RuntimeError::Io {
                what: "reading",
                path: theirs.into(),
                err,
            },
        })?;
        let ours = format!("/proc/self/ns/{name}");
        let ours = std::fs::metadata(&ours).map_err(crate::error::io_err("reading", &ours))?;
        Ok(ours.ino() == theirs.ino() && ours.dev() == theirs.dev())
    }

    /// Of [`NAMESPACES`], those the init does not share with us: the ones
    /// an `exec` joins (`--network host` shares ours: nothing to join).
    pub(crate) fn to_join(&self) -> Result<CloneFlags, RuntimeError> {
        let mut flags = CloneFlags::empty();
        for (name, flag) in NAMESPACES {
            if !self.shares(name)? {
                flags |= flag;
            }
        }
        self.alive()?;
        Ok(flags)
    }

    /// An error unless the pidfd's process is still running: then the pid
    /// has named it all along, and what was read through the pid is its.
    pub fn alive(&self) -> Result<(), RuntimeError> {
        // SAFETY: signal 0 to our own pidfd; no info, no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(RuntimeError::NotTheContainer {
                pid: self.pid,
                reason: "the process has ended".into(),
            });
        }
        Ok(())
    }

    /// Send `signal` to the init (through the pidfd: never to a process
    /// that took its number since).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), RuntimeError> {
        // SAFETY: a signal to our own pidfd; no info, no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(RuntimeError::Sys {
                what: "signalling the container's init",
                err: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// The container's root directory (`/proc/PID/root`, with its mounts),
    /// as an `O_PATH` descriptor opened while the init was alive.
    pub fn root(&self) -> Result<OwnedFd, RuntimeError> {
        let path = format!("/proc/{}/root", self.pid);
        let fd = nix::fcntl::open(
            path.as_str(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| RuntimeError::Io {
            what: "opening",
            path: path.into(),
            err: e.into(),
        })?;
        // SAFETY: `open` returned this fd just now; we own it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        self.alive()?;
        Ok(fd)
    }
}
