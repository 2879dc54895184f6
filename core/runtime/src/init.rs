//! The child side, between `clone` and `execve`. Runs on a copy of the
//! parent's memory and must not allocate: only [`Kernel`] calls on the
//! prepared [`Plan`], so the sequence is unit-tested with a recording fake. A failure is written to the error pipe as a fixed-size record
//! (stage, errno, step index) that the parent turns into a message.

use std::os::fd::RawFd;

use crate::kernel::Kernel;
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
}

impl Stage {
    pub(crate) fn from_u32(n: u32) -> Stage {
        use Stage::*;
        [
            Ready, Stdio, Private, BindRoot, Step, RootFlags, PivotRoot, Hostname, Cgroupns,
            Rlimit, Cwd, NoNewPrivs, Seccomp, Bounding, Groups, Setgid, Setuid, Capset, Ambient,
            Exec, JoinCgroup, Terminal,
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
    k.close_other_fds(&[fds.err_w, fds.start_r, fds.console]);
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
    for (i, step) in plan.steps.iter().enumerate() {
        run_step(k, step).map_err(at(Stage::Step, i as u32))?;
    }
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

fn run_step<K: Kernel>(k: &K, step: &Step) -> Result<(), i32> {
    match step {
        Step::Mount {
            source,
            target,
            fstype,
            flags,
            data,
            create,
            remount_flags,
        } => {
            // The parent created targets in the image's tree; these are
            // the ones inside file systems mounted just now (/dev/pts).
            let _ = match create {
                Create::Dir => k.mkdir(target),
                Create::File => k.create_file(target),
            };
            k.mount(
                source.as_deref(),
                target,
                fstype.as_deref(),
                *flags,
                data.as_deref(),
            )?;
            if let Some(rf) = remount_flags {
                k.mount(None, target, None, *rf, None)?;
            }
        }
        Step::Mknod {
            path,
            mode,
            major,
            minor,
        } => match k.mknod(path, *mode, *major, *minor) {
            // A device the spec names twice (or one of the defaults).
            Err(libc::EEXIST) => {}
            other => other?,
        },
        Step::Symlink { target, link } => k.symlink(target, link)?,
        Step::Mask { path } => match k.is_dir(path) {
            // Paths this kernel does not have need no masking.
            Err(libc::ENOENT) => {}
            Err(e) => return Err(e),
            Ok(true) => k.mount(Some(c"tmpfs"), path, Some(c"tmpfs"), libc::MS_RDONLY, None)?,
            Ok(false) => k.mount(Some(c"/dev/null"), path, None, libc::MS_BIND, None)?,
        },
        Step::ReadOnly { path } => {
            match k.mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None) {
                Err(libc::ENOENT) => return Ok(()),
                other => other?,
            }
            let flags = libc::MS_BIND
                | libc::MS_REMOUNT
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC;
            k.mount(None, path, None, flags, None)?;
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
