//! The child side, between `clone` and `execve`. Runs on a copy of the
//! parent's memory and must not allocate: only libc calls on the prepared
//! [`Plan`]. A failure is written to the error pipe as a fixed-size record
//! (stage, errno, step index) that the parent turns into a message.

use std::os::fd::RawFd;

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
    ReadOnlyRoot,
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
}

impl Stage {
    pub(crate) fn from_u32(n: u32) -> Stage {
        use Stage::*;
        [
            Ready,
            Stdio,
            Private,
            BindRoot,
            Step,
            ReadOnlyRoot,
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
            Stage::ReadOnlyRoot => "making the root file system read-only",
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

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(rc: libc::c_int, stage: Stage, index: u32) -> Result<(), Failure> {
    if rc < 0 {
        Err(Failure {
            stage,
            errno: errno(),
            index,
        })
    } else {
        Ok(())
    }
}

fn ptr(s: &Option<std::ffi::CString>) -> *const libc::c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// The pipes the child holds.
pub(crate) struct ChildFds {
    pub stdio: [RawFd; 3],
    pub err_w: RawFd,
    pub start_r: RawFd,
}

/// Everything from the fresh namespaces to the prepared root, before start.
pub(crate) fn setup(plan: &Plan, fds: &ChildFds) -> Result<(), Failure> {
    // SAFETY: only libc calls on valid, NUL-terminated strings owned by
    // `plan`, which outlives them; no allocation happens here.
    unsafe {
        libc::umask(0);
        for (target, fd) in fds.stdio.iter().enumerate() {
            let target = target as RawFd;
            if *fd == target {
                check(libc::fcntl(target, libc::F_SETFD, 0), Stage::Stdio, 0)?;
            } else {
                check(libc::dup2(*fd, target), Stage::Stdio, 0)?;
            }
        }
        // Another container created from another thread at the same
        // moment inherits our pipes until its exec; holding them would
        // keep our parent from ever seeing EOF. Keep only our own fds.
        close_other_fds(fds.err_w, fds.start_r);
        let root = c"/".as_ptr();
        check(
            libc::mount(
                std::ptr::null(),
                root,
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            Stage::Private,
            0,
        )?;
        let rootfs = plan.rootfs.as_ptr();
        check(
            libc::mount(
                rootfs,
                rootfs,
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ),
            Stage::BindRoot,
            0,
        )?;
        for (i, step) in plan.steps.iter().enumerate() {
            run_step(step).map_err(|errno| Failure {
                stage: Stage::Step,
                errno,
                index: i as u32,
            })?;
        }
        if plan.readonly_root {
            check(
                libc::mount(
                    rootfs,
                    rootfs,
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ),
                Stage::ReadOnlyRoot,
                0,
            )?;
        }
        // pivot_root(".", ".") stacks the old root under the new one; the
        // detach then drops it without needing a directory for it.
        check(libc::chdir(rootfs), Stage::PivotRoot, 0)?;
        let dot = c".".as_ptr();
        check(
            libc::syscall(libc::SYS_pivot_root, dot, dot) as libc::c_int,
            Stage::PivotRoot,
            0,
        )?;
        check(libc::umount2(dot, libc::MNT_DETACH), Stage::PivotRoot, 1)?;
        check(libc::chdir(root), Stage::PivotRoot, 2)?;
        if let Some(h) = &plan.hostname {
            check(
                libc::sethostname(h.as_ptr(), h.as_bytes().len()),
                Stage::Hostname,
                0,
            )?;
        }
    }
    Ok(())
}

/// Close every fd from 3 up except `a` and `b`, without allocating.
fn close_other_fds(a: RawFd, b: RawFd) {
    let (lo, hi) = if a < b {
        (a as u32, b as u32)
    } else {
        (b as u32, a as u32)
    };
    let close = |first: u32, last: u32| {
        if first <= last {
            // SAFETY: closing fds in our own, private fd table.
            unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        }
    };
    close(3, lo.saturating_sub(1));
    close(lo + 1, hi.saturating_sub(1));
    close(hi + 1, u32::MAX);
}

/// # Safety
/// Called only in the child, with strings owned by the plan.
unsafe fn run_step(step: &Step) -> Result<(), i32> {
    let ok = |rc: libc::c_int| if rc < 0 { Err(errno()) } else { Ok(()) };
    // SAFETY: as for `setup`: libc calls on prepared C strings.
    unsafe {
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
                match create {
                    Create::Dir => {
                        libc::mkdir(target.as_ptr(), 0o755);
                    }
                    Create::File => {
                        let fd = libc::open(
                            target.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        );
                        if fd >= 0 {
                            libc::close(fd);
                        }
                    }
                }
                let d = data
                    .as_ref()
                    .map_or(std::ptr::null(), |c| c.as_ptr().cast());
                ok(libc::mount(
                    ptr(source),
                    target.as_ptr(),
                    ptr(fstype),
                    *flags,
                    d,
                ))?;
                if let Some(rf) = remount_flags {
                    ok(libc::mount(
                        std::ptr::null(),
                        target.as_ptr(),
                        std::ptr::null(),
                        *rf,
                        std::ptr::null(),
                    ))?;
                }
            }
            Step::Mknod { path, major, minor } => {
                let dev = libc::makedev(*major, *minor);
                ok(libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, dev))?;
            }
            Step::Symlink { target, link } => ok(libc::symlink(target.as_ptr(), link.as_ptr()))?,
            Step::Mask { path } => {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(path.as_ptr(), &mut st) < 0 {
                    // Paths the kernel does not have need no masking.
                    return if errno() == libc::ENOENT {
                        Ok(())
                    } else {
                        Err(errno())
                    };
                }
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    ok(libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY,
                        std::ptr::null(),
                    ))?;
                } else {
                    ok(libc::mount(
                        c"/dev/null".as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))?;
                }
            }
            Step::ReadOnly { path } => {
                if libc::mount(
                    path.as_ptr(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) < 0
                {
                    return if errno() == libc::ENOENT {
                        Ok(())
                    } else {
                        Err(errno())
                    };
                }
                let flags = libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC;
                ok(libc::mount(
                    std::ptr::null(),
                    path.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                ))?;
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// After start: the cgroup namespace, limits, privileges, seccomp, exec.
/// Returns only on failure.
pub(crate) fn finish(
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Failure {
    match finish_inner(plan, argv, envp) {
        Ok(never) => match never {},
        Err(f) => f,
    }
}

fn finish_inner(
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Result<std::convert::Infallible, Failure> {
    // SAFETY: libc calls on prepared data; argv and envp are NULL-terminated
    // arrays of pointers into `plan`'s C strings.
    unsafe {
        if plan.cgroup_ns {
            check(libc::unshare(libc::CLONE_NEWCGROUP), Stage::Cgroupns, 0)?;
        }
        for (i, (resource, limit)) in plan.rlimits.iter().enumerate() {
            check(
                libc::setrlimit(*resource as _, limit),
                Stage::Rlimit,
                i as u32,
            )?;
        }
        check(libc::chdir(plan.cwd.as_ptr()), Stage::Cwd, 0)?;
        if plan.no_new_privs {
            check(
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
                Stage::NoNewPrivs,
                0,
            )?;
        }
        // Loaded while we still hold CAP_SYS_ADMIN, which a filter needs
        // without no_new_privs; nothing after this is in the blocked list.
        for (i, prog) in plan.seccomp.iter().enumerate() {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            check(
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const _ as libc::c_ulong,
                    0,
                    0,
                ),
                Stage::Seccomp,
                i as u32,
            )?;
        }
        for cap in 0..=plan.last_cap {
            if plan.bounding & (1u64 << cap) == 0 {
                check(
                    libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0),
                    Stage::Bounding,
                    cap as u32,
                )?;
            }
        }
        check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0),
            Stage::Setuid,
            0,
        )?;
        // Raw syscalls: glibc's wrappers signal every thread it believes
        // the process has, and after a raw clone those threads are not ours.
        let rc = libc::syscall(libc::SYS_setgroups, plan.groups.len(), plan.groups.as_ptr());
        check(rc as libc::c_int, Stage::Groups, 0)?;
        let rc = libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid);
        check(rc as libc::c_int, Stage::Setgid, 0)?;
        let rc = libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid);
        check(rc as libc::c_int, Stage::Setuid, 0)?;
        check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0),
            Stage::Setuid,
            1,
        )?;
        let mut header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: plan.effective as u32,
                permitted: plan.permitted as u32,
                inheritable: plan.inheritable as u32,
            },
            CapData {
                effective: (plan.effective >> 32) as u32,
                permitted: (plan.permitted >> 32) as u32,
                inheritable: (plan.inheritable >> 32) as u32,
            },
        ];
        check(
            libc::syscall(
                libc::SYS_capset,
                &mut header as *mut CapHeader,
                data.as_ptr(),
            ) as libc::c_int,
            Stage::Capset,
            0,
        )?;
        for cap in 0..=plan.last_cap {
            if plan.ambient & (1u64 << cap) != 0 {
                let rc = libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    cap as libc::c_ulong,
                    0,
                    0,
                );
                check(rc, Stage::Ambient, cap as u32)?;
            }
        }
        libc::umask(0o022);
        // Rust ignores SIGPIPE and a host process may block signals: the
        // container's program starts with the defaults.
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );

        // "Permission denied" somewhere on PATH wins over "not found"
        // elsewhere, as execvp does.
        let mut best = libc::ENOENT;
        for c in &plan.candidates {
            libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr());
            let e = errno();
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
}
