//! The child side, between `clone` and `execve`. Runs on a copy of the
//! parent's memory and must not allocate: only [`Kernel`] calls on the
//! prepared [`Plan`], so the sequence is unit-tested with a recording fake. A failure is written to the error pipe as a fixed-size record
//! (stage, errno, step index) that the parent turns into a message.

use std::ffi::CStr;
use std::os::fd::RawFd;

use crate::kernel::{Kernel, Source};
use crate::plan::{Create, Plan, Step};

/// Stages a failure is reported from; the parent names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Stage {
    Ready = 0,
    Stdio,
    Private,
    BindRoot,
    Step,
    RootFlags,
    PivotRoot,
    Hostname,
    Cgroupns,
    Rlimit,
    Cwd,
    NoNewPrivs,
    Seccomp,
    Bounding,
    Groups,
    Setgid,
    Setuid,
    Capset,
    Ambient,
    Exec,
    JoinCgroup,
    Terminal,
    CloseFds,
}

impl Stage {
    pub(crate) fn from_u32(n: u32) -> Stage {
        use Stage::*;
        [
            Ready, Stdio, Private, BindRoot, Step, RootFlags, PivotRoot, Hostname, Cgroupns,
            Rlimit, Cwd, NoNewPrivs, Seccomp, Bounding, Groups, Setgid, Setuid, Capset, Ambient,
            Exec, JoinCgroup, Terminal, CloseFds,
        ]
        .get(n as usize)
        .copied()
        .unwrap_or(Exec)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Ready => "ready",
            Stage::Stdio => "setting up stdio",
            Stage::Private => "making mounts private",
            Stage::BindRoot => "binding the root file system",
            Stage::Step => "mount",
            Stage::RootFlags => "setting the root file system's mount flags",
            Stage::PivotRoot => "pivot_root",
            Stage::Hostname => "setting the hostname",
            Stage::Cgroupns => "creating the cgroup namespace",
            Stage::Rlimit => "setting a ulimit",
            Stage::Cwd => "changing to the working directory",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::Seccomp => "loading the seccomp filter",
            Stage::Bounding => "dropping bounding capabilities",
            Stage::Groups => "setting supplementary groups",
            Stage::Setgid => "setting the group id",
            Stage::Setuid => "setting the user id",
            Stage::Capset => "setting capabilities",
            Stage::Ambient => "setting ambient capabilities",
            Stage::Exec => "exec",
            Stage::JoinCgroup => "joining the container's cgroup",
            Stage::Terminal => "setting up the terminal",
            Stage::CloseFds => "closing the file descriptors it inherited",
        }
    }
}

/// One failure, as it crosses the pipe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    pub stage: Stage,
    pub errno: i32,
    pub index: u32,
}

pub(crate) const RECORD: usize = 12;

impl Failure {
    pub(crate) fn encode(&self) -> [u8; RECORD] {
        let mut b = [0u8; RECORD];
        b[0..4].copy_from_slice(&(self.stage as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        b[8..12].copy_from_slice(&self.index.to_ne_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; RECORD]) -> Failure {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Failure {
            stage: Stage::from_u32(u32::from_ne_bytes(word(0))),
            errno: i32::from_ne_bytes(word(4)),
            index: u32::from_ne_bytes(word(8)),
        }
    }
}

/// The pipes the child holds.
pub(crate) struct ChildFds {
    pub stdio: [RawFd; 3],
    pub err_w: RawFd,
    pub start_r: RawFd,
    /// With `process.terminal`: the socket the pty's master goes back
    /// over; -1 without.
    pub console: RawFd,
}

fn at(stage: Stage, index: u32) -> impl Fn(i32) -> Failure {
    move |errno| Failure {
        stage,
        errno,
        index,
    }
}

/// Everything from the fresh namespaces to the prepared root, before start.
pub(crate) fn setup<K: Kernel>(k: &K, plan: &Plan, fds: &ChildFds) -> Result<(), Failure> {
    k.umask(0);
    for (target, fd) in fds.stdio.iter().enumerate() {
        k.dup_to(*fd, target as RawFd)
            .map_err(at(Stage::Stdio, target as u32))?;
    }
    // Another container created from another thread at the same moment
    // inherits our pipes until its exec; holding them would keep our
    // parent from ever seeing EOF. Keep only our own fds.
    close_other_fds(k, &[fds.err_w, fds.start_r, fds.console])?;
    k.mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(at(Stage::Private, 0))?;
    let rootfs = plan.rootfs.as_c_str();
    k.mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(at(Stage::BindRoot, 0))?;
    // Every step works on paths inside the root, from this descriptor of
    // it (the bind just made), through openat2(RESOLVE_IN_ROOT).
    let root = k.open_dir(rootfs).map_err(at(Stage::BindRoot, 1))?;
    for (i, step) in plan.steps.iter().enumerate() {
        run_step(k, root, step).map_err(at(Stage::Step, i as u32))?;
    }
    k.close(root);
    // The host mounts a root file system nosuid,nodev, so that what a
    // container plants there is inert for local users (the CVE-2021-41091
    // class); its own copy of that mount, in this namespace only, gets
    // setuid and device files back, as a container expects (`su`, `ping`).
    // A bind remount sets exactly the flags given, clearing the others.
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT;
    if plan.readonly_root {
        flags |= libc::MS_RDONLY;
    }
    k.mount(Some(rootfs), rootfs, None, flags, None)
        .map_err(at(Stage::RootFlags, 0))?;
    // pivot_root(".", ".") stacks the old root under the new one; the
    // detach then drops it without needing a directory for it.
    k.chdir(rootfs).map_err(at(Stage::PivotRoot, 0))?;
    k.pivot_root_here().map_err(at(Stage::PivotRoot, 1))?;
    k.umount_detach(c".").map_err(at(Stage::PivotRoot, 2))?;
    k.chdir(c"/").map_err(at(Stage::PivotRoot, 3))?;
    if let Some(h) = &plan.hostname {
        k.sethostname(h).map_err(at(Stage::Hostname, 0))?;
    }
    if fds.console >= 0 {
        terminal(k, plan, fds.console)?;
    }
    Ok(())
}

/// The most fds closed one by one when `close_range` is not there (Linux
/// before 5.9, or a seccomp filter of ours that blocks it): a million
/// `close` calls take a fraction of a second; above that, fail rather
/// than spend minutes or leave a host fd open in the container.
const MAX_CLOSE_ONE_BY_ONE: u64 = 1 << 20;

/// Close every fd from 3 up except those in `keep` (negative ones are
/// ignored): with `close_range` over the gaps between the kept fds, else
/// one `close` at a time up to the fd limit. No allocation.
pub(crate) fn close_other_fds<K: Kernel>(k: &K, keep: &[RawFd]) -> Result<(), Failure> {
    let mut next = 3u32;
    loop {
        let upto = keep
            .iter()
            .filter_map(|&fd| u32::try_from(fd).ok())
            .filter(|&fd| fd >= next)
            .min();
        let last = upto.map_or(u32::MAX, |kept| kept.saturating_sub(1));
        if next <= last
            && let Err(errno) = k.close_range(next, last)
        {
            return close_one_by_one(k, next, keep, errno);
        }
        match upto {
            Some(kept) => next = kept + 1,
            None => return Ok(()),
        }
    }
}

/// What `close_range` failed to do (with `errno`), from fd `first` up.
fn close_one_by_one<K: Kernel>(
    k: &K,
    first: u32,
    keep: &[RawFd],
    errno: i32,
) -> Result<(), Failure> {
    let limit = k.fd_limit();
    if limit > MAX_CLOSE_ONE_BY_ONE {
        return Err(at(Stage::CloseFds, 0)(errno));
    }
    for fd in first..limit as u32 {
        let fd = fd as RawFd;
        if !keep.contains(&fd) {
            k.close(fd);
        }
    }
    Ok(())
}

/// A pty from the container's devpts (mounted by now, after pivot_root)
/// as controlling terminal and standard streams; its master goes back to
/// the caller, who holds it for the container's life.
fn terminal<K: Kernel>(k: &K, plan: &Plan, console: RawFd) -> Result<(), Failure> {
    let (master, slave) = k.open_pty().map_err(at(Stage::Terminal, 0))?;
    // As runc's fixStdioPermissions: the user may reopen its terminal.
    k.fchown(slave, plan.uid).map_err(at(Stage::Terminal, 1))?;
    k.make_controlling_terminal(slave)
        .map_err(at(Stage::Terminal, 2))?;
    for target in 0..3 {
        k.dup_to(slave, target).map_err(at(Stage::Terminal, 3))?;
    }
    k.close(slave);
    k.send_fd(console, master).map_err(at(Stage::Terminal, 4))?;
    k.close(master);
    k.close(console);
    Ok(())
}

/// `path` (inside the root) opened `O_PATH`, or `None` when it does not exist.
fn open_optional<K: Kernel>(k: &K, root: RawFd, path: &CStr) -> Result<Option<RawFd>, i32> {
    match k.open_in(root, path, libc::O_PATH) {
        Err(libc::ENOENT) => Ok(None),
        other => other.map(Some),
    }
}

/// `mount_on` to `target`, then the descriptor closed whatever happened.
fn mount_closing<K: Kernel>(
    k: &K,
    source: Option<Source<'_>>,
    target: RawFd,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    let r = k.mount_on(source, target, fstype, flags, data);
    k.close(target);
    r
}

fn run_step<K: Kernel>(k: &K, root: RawFd, step: &Step) -> Result<(), i32> {
    match step {
        Step::Mount {
            source,
            target,
            parent,
            name,
            fstype,
            flags,
            data,
            create,
            remount_flags,
        } => {
            let fd = match open_optional(k, root, target)? {
                Some(fd) => fd,
                None => {
                    // The parent made the targets in the image's tree;
                    // these are in file systems mounted just now (/dev/pts).
                    let dir = k.open_in(root, parent, libc::O_PATH | libc::O_DIRECTORY)?;
                    let made = match create {
                        Create::Dir => k.mkdirat(dir, name),
                        Create::File => k.create_at(dir, name),
                    };
                    k.close(dir);
                    made?;
                    k.open_in(root, target, libc::O_PATH)?
                }
            };
            let source = source.as_deref().map(Source::Path);
            mount_closing(k, source, fd, fstype.as_deref(), *flags, data.as_deref())?;
            if let Some(rf) = remount_flags {
                // The mount just made, looked up again.
                let fd = k.open_in(root, target, libc::O_PATH)?;
                mount_closing(k, None, fd, None, *rf, None)?;
            }
        }
        Step::Mknod {
            dir,
            name,
            mode,
            major,
            minor,
        } => {
            let dir = k.open_in(root, dir, libc::O_PATH | libc::O_DIRECTORY)?;
            let made = k.mknodat(dir, name, *mode, *major, *minor);
            k.close(dir);
            match made {
                // A device the spec names twice (or one of the defaults).
                Err(libc::EEXIST) => {}
                other => other?,
            }
        }
        Step::Symlink { target, dir, name } => {
            let dir = k.open_in(root, dir, libc::O_PATH | libc::O_DIRECTORY)?;
            let made = k.symlinkat(target, dir, name);
            k.close(dir);
            made?;
        }
        Step::Mask { path } => {
            // Paths this kernel does not have need no masking.
            let Some(fd) = open_optional(k, root, path)? else {
                return Ok(());
            };
            match k.is_dir_fd(fd) {
                Ok(true) => {
                    let tmpfs = Some(Source::Path(c"tmpfs"));
                    mount_closing(k, tmpfs, fd, Some(c"tmpfs"), libc::MS_RDONLY, None)?
                }
                Ok(false) => {
                    let null = Some(Source::Path(c"/dev/null"));
                    mount_closing(k, null, fd, None, libc::MS_BIND, None)?
                }
                Err(e) => {
                    k.close(fd);
                    return Err(e);
                }
            }
        }
        Step::ReadOnly { path } => {
            let Some(fd) = open_optional(k, root, path)? else {
                return Ok(());
            };
            let flags = libc::MS_BIND | libc::MS_REC;
            mount_closing(k, Some(Source::Fd(fd)), fd, None, flags, None)?;
            let fd = k.open_in(root, path, libc::O_PATH)?;
            let flags = libc::MS_BIND
                | libc::MS_REMOUNT
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC;
            mount_closing(k, None, fd, None, flags, None)?;
        }
    }
    Ok(())
}

/// After start: the cgroup namespace, limits, privileges, seccomp, exec.
/// Returns only on failure.
pub(crate) fn finish<K: Kernel>(
    k: &K,
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Failure {
    match finish_inner(k, plan, argv, envp) {
        Ok(never) => match never {},
        Err(f) => f,
    }
}

fn finish_inner<K: Kernel>(
    k: &K,
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Result<std::convert::Infallible, Failure> {
    if plan.cgroup_ns {
        k.unshare(libc::CLONE_NEWCGROUP)
            .map_err(at(Stage::Cgroupns, 0))?;
    }
    for (i, (resource, limit)) in plan.rlimits.iter().enumerate() {
        k.setrlimit(*resource, limit)
            .map_err(at(Stage::Rlimit, i as u32))?;
    }
    k.chdir(&plan.cwd).map_err(at(Stage::Cwd, 0))?;
    if plan.no_new_privs {
        k.prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
            .map_err(at(Stage::NoNewPrivs, 0))?;
    }
    // Loaded while we still hold CAP_SYS_ADMIN, which a filter needs
    // without no_new_privs; nothing after this is in the blocked list.
    for (i, prog) in plan.seccomp.iter().enumerate() {
        k.seccomp(prog).map_err(at(Stage::Seccomp, i as u32))?;
    }
    for cap in 0..=plan.last_cap {
        if plan.bounding & (1u64 << cap) == 0 {
            k.prctl(libc::PR_CAPBSET_DROP, cap.into())
                .map_err(at(Stage::Bounding, cap.into()))?;
        }
    }
    // Keep the permitted set across the uid change; capset then sets
    // exactly the spec's sets, and execve derives the rest (a non-root
    // user ends with no effective capabilities, as in Docker).
    k.prctl(libc::PR_SET_KEEPCAPS, 1)
        .map_err(at(Stage::Setuid, 0))?;
    k.setgroups(&plan.groups).map_err(at(Stage::Groups, 0))?;
    k.setresgid(plan.gid).map_err(at(Stage::Setgid, 0))?;
    k.setresuid(plan.uid).map_err(at(Stage::Setuid, 1))?;
    k.prctl(libc::PR_SET_KEEPCAPS, 0)
        .map_err(at(Stage::Setuid, 2))?;
    k.capset(plan.effective, plan.permitted, plan.inheritable)
        .map_err(at(Stage::Capset, 0))?;
    for cap in 0..=plan.last_cap {
        if plan.ambient & (1u64 << cap) != 0 {
            k.raise_ambient(cap)
                .map_err(at(Stage::Ambient, cap.into()))?;
        }
    }
    k.umask(0o022);
    // Rust ignores SIGPIPE and a host process may block signals: the
    // container's program starts with the defaults.
    k.reset_signals();

    // "Permission denied" somewhere on PATH wins over "not found"
    // elsewhere, as execvp does.
    let mut best = libc::ENOENT;
    for c in &plan.candidates {
        let e = k.execve(c, argv, envp);
        if e != libc::ENOENT && e != libc::ENOTDIR {
            best = e;
            if e != libc::EACCES {
                break;
            }
        }
    }
    Err(Failure {
        stage: Stage::Exec,
        errno: best,
        index: 0,
    })
}

#[cfg(test)]
#[path = "init_tests.rs"]
mod tests;
