//! `exec`: one more process in a running container. [`exec`] joins the
//! namespaces of the container's init (through its pidfd, see
//! [`ContainerInit`]), forks (so the child is really in the PID
//! namespace); the child moves itself into the container's cgroup through
//! the `cgroup.procs` files the caller opened (this crate never decides
//! cgroups), joins the cgroup namespace, closes every fd but its standard
//! streams and runs the command with the container's capabilities,
//! seccomp filter, no_new_privs and rlimits, as the container's user or
//! the ids the caller resolved for `-u` ([`ExecUser`]: nothing is looked up
//! by name in here, where the container's files could have changed since
//! the caller judged them), in its working directory or `-w`'s.
//!
//! Until its `execve`, the child is this binary inside the container's PID
//! namespace, holding host fds (the cgroup files, the pidfd, pipes): a
//! process of the container that opened its `/proc/PID/exe` could write
//! over the host's binary (CVE-2019-5736). So the helper makes itself
//! non-dumpable before joining anything, as runc's nsexec does: only
//! CAP_SYS_PTRACE, which containers lack, opens a non-dumpable process's
//! `/proc` files; `execve` makes the command dumpable again.
//!
//! `setns` on a mount namespace needs a single-threaded caller: [`exec`]
//! is meant for a small helper process (`berth-shim exec`), not a daemon.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::Spec;

use crate::container::{ExitStatus, read_record};
use crate::container_init::ContainerInit;
use crate::error::{RuntimeError, exec_exit_code};
use crate::init::{Failure, Stage, close_other_fds, finish};
use crate::kernel::LibcKernel;
use crate::plan::{Plan, candidates, cstring, rlimits_of};
use crate::user::ResolvedUser;

/// What `docker exec` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `-e KEY=VALUE` on top of the container's environment; a bare `KEY`
    /// removes the variable.
    pub env: Vec<String>,
    /// Who the command runs as, taken as it is: `-u user[:group]` resolved
    /// once by the caller (in the container's `/etc/passwd`, the ids its
    /// policies judged); `None` is the container's own user.
    pub user: Option<ExecUser>,
    /// `-w DIR`; `None` is the container's working directory.
    pub workdir: Option<String>,
    /// `-t`: a pseudo-terminal of (rows, columns), relayed to our stdio.
    pub tty: Option<(u16, u16)>,
    /// `-i`: with `-t`, relay our stdin to the terminal (without, the
    /// command's reads on it wait, as in Docker).
    pub interactive: bool,
}

/// The ids an exec'd command runs as. Never a name: a name is looked up in
/// the container's `/etc/passwd`, which the container can rewrite between
/// two lookups, so it is resolved once, by whoever decides whether the
/// command may run, and the ids go from there to the command unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

impl From<ResolvedUser> for ExecUser {
    fn from(u: ResolvedUser) -> ExecUser {
        ExecUser {
            uid: u.uid,
            gid: u.gid,
            additional_gids: u.additional_gids,
        }
    }
}

/// The child being waited for, so a signal to us reaches it.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Run `opts` in the container whose init is `init` and whose runtime
/// spec is `spec`; the standard streams are the caller's. `cgroup_procs`
/// are the container's `cgroup.procs` files, opened for writing: only the
/// command joins them, so the caller (which waits for it) never counts
/// against the container's limits. Returns how the command ended. The
/// caller must be single-threaded.
pub fn exec(
    init: &ContainerInit,
    spec: &Spec,
    opts: &ExecOptions,
    cgroup_procs: &[File],
) -> Result<ExitStatus, RuntimeError> {
    if opts.args.is_empty() {
        return Err(RuntimeError::NoCommand);
    }
    // Before anything of the container can see us (see the module doc);
    // the forked child inherits it.
    // SAFETY: prctl with plain values.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
        return Err(RuntimeError::Sys {
            what: "making the exec helper non-dumpable",
            err: io::Error::last_os_error(),
        });
    }
    let joins = init.to_join()?;
    // The cgroup namespace is joined by the child, after it moved into the
    // container's cgroup from outside the namespace.
    let cgroup_ns = joins.contains(CloneFlags::CLONE_NEWCGROUP);
    let here = joins - CloneFlags::CLONE_NEWCGROUP;
    // All at once, from the one process the pidfd names (the mount
    // namespace is always the container's own: `here` is never empty).
    nix::sched::setns(init.pidfd(), here).map_err(|e| RuntimeError::Sys {
        what: "joining the container's namespaces",
        err: e.into(),
    })?;
    // setns into a mount namespace puts us at its root: the container's.
    nix::unistd::chdir("/").map_err(|e| RuntimeError::Sys {
        what: "changing to the container's root",
        err: e.into(),
    })?;
    let plan = plan(spec, opts)?;
    let pty = match opts.tty {
        Some((rows, cols)) => Some(crate::exec_tty::open(rows, cols)?),
        None => None,
    };
    let argv = crate::plan::null_terminated(&plan.argv);
    let envp = crate::plan::null_terminated(&plan.env);
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Sys {
            what: "creating a pipe",
            err: e.into(),
        })?;
    let parent = nix::unistd::getpid();
    // SAFETY: the caller is single-threaded (see the module doc), so the
    // child may do anything; it still only runs prepared kernel calls.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(RuntimeError::Sys {
            what: "fork",
            err: e.into(),
        }),
        Ok(ForkResult::Child) => {
            drop(err_r);
            // A helper killed (a health check's timeout) takes its command along.
            // SAFETY: prctl and getppid touch no memory of ours.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                // Our parent is outside our PID namespace, where it shows as 0;
                // anything else means it died and we were reparented.
                let ppid = libc::getppid();
                if ppid != 0 && ppid != parent.as_raw() {
                    libc::_exit(125);
                }
            }
            let tty = match &pty {
                Some(p) => crate::exec_tty::attach(&p.slave).map_err(|errno| Failure {
                    stage: Stage::Stdio,
                    errno,
                    index: 0,
                }),
                None => Ok(()),
            };
            let ns = cgroup_ns.then_some(init);
            // The command keeps its standard streams only: not the cgroup
            // files, the pidfd, the pty's other fds nor anything the
            // daemon let us inherit.
            let f = match tty
                .and_then(|()| join_cgroup(cgroup_procs, ns))
                .and_then(|()| close_other_fds(&LibcKernel, &[err_w.as_raw_fd()]))
            {
                Ok(()) => finish(&LibcKernel, &plan, &argv, &envp),
                Err(f) => f,
            };
            let rec = f.encode();
            // SAFETY: writes a stack buffer to our own pipe end; _exit is always safe.
            unsafe {
                libc::write(err_w.as_raw_fd(), rec.as_ptr().cast(), rec.len());
                libc::_exit(if f.stage == Stage::Exec {
                    exec_exit_code(f.errno)
                } else {
                    126
                })
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(err_w);
            CHILD.store(child.as_raw(), Ordering::Relaxed);
            for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
                // SAFETY: `forward` only loads an atomic and calls kill.
                unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
            }
            let mut err_r = File::from(err_r);
            let failure = read_record(&mut err_r)?;
            if let Some(p) = pty {
                // Only the command holds the slave now: EIO on the master
                // means it (and whatever it started on the terminal) ended.
                drop(p.slave);
                if failure.is_none() {
                    crate::exec_tty::relay(&p.master, opts.interactive);
                }
            }
            let status = reap(child)?;
            match failure {
                None => Ok(status),
                Some(f) => Err(failure_error(&plan, f)),
            }
        }
    }
}

/// In the child: into the container's cgroup (writing 0 moves the
/// writer), then its cgroup namespace (`init`'s).
fn join_cgroup(procs: &[File], init: Option<&ContainerInit>) -> Result<(), Failure> {
    for (i, f) in procs.iter().enumerate() {
        // SAFETY: writes one byte of a static C string to an fd we hold.
        let n = unsafe { libc::write(f.as_raw_fd(), c"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(Failure {
                stage: Stage::JoinCgroup,
                errno: io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO),
                index: i as u32,
            });
        }
    }
    if let Some(init) = init {
        nix::sched::setns(init.pidfd(), CloneFlags::CLONE_NEWCGROUP).map_err(|e| Failure {
            stage: Stage::Cgroupns,
            errno: e as i32,
            index: 0,
        })?;
    }
    Ok(())
}

fn failure_error(plan: &Plan, f: Failure) -> RuntimeError {
    let err = io::Error::from_raw_os_error(f.errno);
    if f.stage == Stage::Exec {
        let hint = match exec_exit_code(f.errno) {
            127 => ": executable file not found in $PATH",
            126 => ": permission denied or not an executable",
            _ => "",
        };
        RuntimeError::Exec {
            command: plan.command.clone(),
            hint,
            err,
        }
    } else {
        let detail = if f.stage == Stage::Cwd {
            format!(" {}", plan.cwd.to_string_lossy())
        } else {
            String::new()
        };
        RuntimeError::Setup {
            stage: f.stage.name(),
            detail,
            err,
        }
    }
}

fn reap(child: Pid) -> Result<ExitStatus, RuntimeError> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ExitStatus::Signaled(sig as i32)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(RuntimeError::Sys {
                    what: "waiting for the exec'd process",
                    err: e.into(),
                });
            }
        }
    }
}

/// The environment: the container's, then `extra` (`KEY=V` sets, `KEY` unsets).
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut env: Vec<String> = base.to_vec();
    for e in extra {
        let k = key(e);
        env.retain(|x| key(x) != k);
        if e.contains('=') {
            env.push(e.clone());
        }
    }
    env
}

/// The container's process settings with the exec's command, user,
/// environment and directory. Runs inside the container's mount namespace.
fn plan(spec: &Spec, opts: &ExecOptions) -> Result<Plan, RuntimeError> {
    let bad = |reason: &str| RuntimeError::BadSpec {
        reason: reason.to_string(),
    };
    let process = spec.process().as_ref().ok_or_else(|| bad("no process"))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| bad("no linux section"))?;
    let (uid, gid, groups) = match &opts.user {
        Some(u) => (u.uid, u.gid, u.additional_gids.clone()),
        None => {
            let u = process.user();
            (
                u.uid(),
                u.gid(),
                u.additional_gids().clone().unwrap_or_default(),
            )
        }
    };
    let cwd = match opts.workdir.as_deref().filter(|w| !w.is_empty()) {
        Some(w) if !w.starts_with('/') => {
            return Err(bad(&format!(
                "working directory {w:?} is not absolute: use a path starting with /"
            )));
        }
        Some(w) => w.to_string(),
        None => process.cwd().to_string_lossy().into_owned(),
    };
    let mut env = merge_env(&process.env().clone().unwrap_or_default(), &opts.env);
    // As Docker: a terminal gets a TERM unless one was given.
    if opts.tty.is_some() && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let caps = process.capabilities().as_ref();
    let seccomp = match linux.seccomp() {
        Some(profile) => crate::seccomp::compile(profile)?,
        None => Vec::new(),
    };
    Ok(Plan {
        clone_flags: 0,
        // The exec's pty is opened by `exec_tty`, not by the child.
        terminal: false,
        cgroup_ns: false,
        rootfs: CString::from(c"/"),
        steps: Vec::new(),
        labels: Vec::new(),
        readonly_root: false,
        hostname: None,
        rlimits: rlimits_of(process)?,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        seccomp,
        last_cap: crate::caps::last_cap(),
        bounding: crate::caps::mask(caps.and_then(|c| c.bounding().as_ref()))?,
        effective: crate::caps::mask(caps.and_then(|c| c.effective().as_ref()))?,
        permitted: crate::caps::mask(caps.and_then(|c| c.permitted().as_ref()))?,
        inheritable: crate::caps::mask(caps.and_then(|c| c.inheritable().as_ref()))?,
        ambient: crate::caps::mask(caps.and_then(|c| c.ambient().as_ref()))?,
        uid,
        gid,
        groups,
        cwd: cstring(&cwd)?,
        command: opts.args.join(" "),
        candidates: candidates(&opts.args[0], &env)?,
        argv: opts
            .args
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<_, _>>()?,
        env: env.iter().map(|e| cstring(e)).collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_unsets() {
        let base = vec!["PATH=/bin".to_string(), "A=1".into(), "B=2".into()];
        let out = merge_env(&base, &["A=9".into(), "B".into(), "C=3".into()]);
        assert_eq!(out, vec!["PATH=/bin", "A=9", "C=3"]);
    }
}
