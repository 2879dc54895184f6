//! The lifecycle a monitor drives: [`Container::create`] (namespaces,
//! mounts, pivot_root; the process then waits), [`Container::start`]
//! (privileges dropped, seccomp, exec), [`Container::wait`],
//! [`Container::kill`]. Between create and start the caller places
//! [`Container::pid`] in its cgroup and configures [`Container::net_ns_path`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::error::{RuntimeError, exec_exit_code};
use crate::init::{ChildFds, Failure, RECORD, Stage, finish, setup};
use crate::kernel::LibcKernel;
use crate::plan::Plan;

/// The standard streams of the container process; `None` is `/dev/null`.
/// A spec with `process.terminal` replaces all three with its terminal
/// (see [`Container::take_terminal`]).
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// How the container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// Docker's exit code: the status, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// A created (and maybe started) container process, owned by this handle.
#[derive(Debug)]
pub struct Container {
    id: String,
    pid: Pid,
    command: String,
    err_r: File,
    start_w: Option<File>,
    status: Option<ExitStatus>,
    terminal: Option<OwnedFd>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Sys {
        what: "creating a pipe",
        err: e.into(),
    })
}

fn dev_null() -> Result<OwnedFd, RuntimeError> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(crate::error::io_err("opening", "/dev/null"))
}

/// Read one failure record; `None` on EOF (the pipe closed by exec or exit).
pub(crate) fn read_record(r: &mut File) -> Result<Option<Failure>, RuntimeError> {
    let mut buf = [0u8; RECORD];
    let mut got = 0;
    while got < RECORD {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                return Err(RuntimeError::Sys {
                    what: "reading from the container",
                    err,
                });
            }
        }
    }
    Ok(if got == RECORD {
        Some(Failure::decode(&buf))
    } else {
        None
    })
}

impl Container {
    /// Create the container process for `spec` (whose `root.path` is the
    /// mounted rootfs): new namespaces, mounts, pivot_root, hostname. It
    /// then waits for [`start`](Self::start).
    pub fn create(id: &str, spec: &Spec, stdio: Stdio) -> Result<Container, RuntimeError> {
        let plan = Plan::from_spec(spec)?;
        let stdin = match stdio.stdin {
            Some(fd) => fd,
            None => dev_null()?,
        };
        let stdout = match stdio.stdout {
            Some(fd) => fd,
            None => dev_null()?,
        };
        let stderr = match stdio.stderr {
            Some(fd) => fd,
            None => dev_null()?,
        };
        let (err_r, err_w) = pipe()?;
        let (start_r, start_w) = pipe()?;
        let console = if plan.terminal {
            Some(
                std::os::unix::net::UnixStream::pair().map_err(|err| RuntimeError::Sys {
                    what: "creating the terminal's socket pair",
                    err,
                })?,
            )
        } else {
            None
        };
        let fds = ChildFds {
            stdio: [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
            err_w: err_w.as_raw_fd(),
            start_r: start_r.as_raw_fd(),
            console: console.as_ref().map_or(-1, |(_, c)| c.as_raw_fd()),
        };
        // Prepared before the clone: the child must not allocate.
        let argv = crate::plan::null_terminated(&plan.argv);
        let envp = crate::plan::null_terminated(&plan.env);
        let parent_fds = [
            err_r.as_raw_fd(),
            start_w.as_raw_fd(),
            console.as_ref().map_or(-1, |(p, _)| p.as_raw_fd()),
        ];

        // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child
        // gets a copy of our memory and runs only `child`, which makes no
        // allocation and ends in execve or _exit.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone,
                plan.clone_flags | libc::SIGCHLD as libc::c_long,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if ret < 0 {
            return Err(RuntimeError::Sys {
                what: "clone",
                err: io::Error::last_os_error(),
            });
        }
        if ret == 0 {
            child(&plan, &fds, parent_fds, &argv, &envp);
        }
        let pid = Pid::from_raw(ret as libc::pid_t);
        let console = console.map(|(ours, theirs)| {
            drop(theirs);
            ours
        });
        drop((err_w, start_r, stdin, stdout, stderr));
        let mut container = Container {
            id: id.to_string(),
            pid,
            command: plan.command.clone(),
            err_r: File::from(err_r),
            start_w: Some(File::from(start_w)),
            status: None,
            terminal: None,
        };
        match read_record(&mut container.err_r)? {
            Some(f) if f.stage == Stage::Ready => {
                // The child sent the master before it reported ready.
                if let Some(sock) = &console {
                    use std::os::fd::AsFd;
                    match crate::console::recv_fd(sock.as_fd()) {
                        Ok(Some(master)) => container.terminal = Some(master),
                        Ok(None) => {
                            return Err(RuntimeError::Setup {
                                stage: Stage::Terminal.name(),
                                detail: String::new(),
                                err: io::Error::other("the container sent no terminal"),
                            });
                        }
                        Err(err) => {
                            return Err(RuntimeError::Sys {
                                what: "receiving the container's terminal",
                                err,
                            });
                        }
                    }
                }
                tracing::debug!(id, pid = pid.as_raw(), "container created");
                Ok(container)
            }
            Some(f) => {
                container.reap()?;
                let detail = if f.stage == Stage::Step {
                    plan.labels
                        .get(f.index as usize)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                Err(RuntimeError::Setup {
                    stage: f.stage.name(),
                    detail,
                    err: io::Error::from_raw_os_error(f.errno),
                })
            }
            None => {
                container.reap()?;
                Err(RuntimeError::Setup {
                    stage: "setup",
                    detail: String::new(),
                    err: io::Error::other("the container process exited without a report"),
                })
            }
        }
    }

    /// The master side of the container's terminal, once (for a spec with
    /// `process.terminal`; `None` otherwise or when already taken). Its
    /// holder reads the container's output from it and writes its input;
    /// when the last process holding the slave side ends, reads fail (EIO).
    pub fn take_terminal(&mut self) -> Option<OwnedFd> {
        self.terminal.take()
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The process id (in the caller's PID namespace), for cgroup placement.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The network namespace, for the network setup between create and start.
    pub fn net_ns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid.as_raw()))
    }

    /// Let the process drop its privileges and exec its command. A command
    /// that cannot be run is an [`RuntimeError::Exec`] (exit code 126 or
    /// 127), and [`wait`](Self::wait) then reports that code too.
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        let Some(mut w) = self.start_w.take() else {
            return Err(RuntimeError::State {
                id: self.id.clone(),
                state: "started",
                action: "start",
            });
        };
        w.write_all(&[1]).map_err(|err| RuntimeError::Sys {
            what: "starting the container",
            err,
        })?;
        drop(w);
        match read_record(&mut self.err_r)? {
            None => Ok(()),
            Some(f) => {
                self.reap()?;
                let err = io::Error::from_raw_os_error(f.errno);
                if f.stage == Stage::Exec {
                    let hint = match exec_exit_code(f.errno) {
                        127 => ": executable file not found in $PATH",
                        126 => ": permission denied or not an executable",
                        _ => "",
                    };
                    Err(RuntimeError::Exec {
                        command: self.command.clone(),
                        hint,
                        err,
                    })
                } else {
                    Err(RuntimeError::Setup {
                        stage: f.stage.name(),
                        detail: String::new(),
                        err,
                    })
                }
            }
        }
    }

    /// Send `signal` to the container's init process.
    pub fn kill(&self, signal: Signal) -> Result<(), RuntimeError> {
        if self.status.is_some() {
            return Err(RuntimeError::State {
                id: self.id.clone(),
                state: "stopped",
                action: "kill",
            });
        }
        nix::sys::signal::kill(self.pid, signal).map_err(|e| RuntimeError::Sys {
            what: "sending a signal",
            err: e.into(),
        })
    }

    /// Wait for the process to end (at once if it already has).
    pub fn wait(&mut self) -> Result<ExitStatus, RuntimeError> {
        self.reap()
    }

    fn reap(&mut self) -> Result<ExitStatus, RuntimeError> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let status = loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => break ExitStatus::Exited(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => break ExitStatus::Signaled(sig as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(RuntimeError::Sys {
                        what: "waiting for the container",
                        err: e.into(),
                    });
                }
            }
        };
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Container {
    /// A handle dropped before its process ended kills it, so nothing
    /// outlives its owner unnoticed; a monitor keeps the handle.
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
            let _ = self.reap();
        }
    }
}

/// The child's whole life; never returns.
fn child(
    plan: &Plan,
    fds: &ChildFds,
    parent_fds: [libc::c_int; 3],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let report = |f: Failure| {
        let rec = f.encode();
        // SAFETY: writes a stack buffer to our own pipe end.
        unsafe { libc::write(fds.err_w, rec.as_ptr().cast(), rec.len()) };
    };
    // SAFETY: closing the parent's ends in our copy of the fd table (-1: none).
    unsafe {
        for fd in parent_fds {
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
    if let Err(f) = setup(&LibcKernel, plan, fds) {
        report(f);
        // SAFETY: _exit is always safe to call.
        unsafe { libc::_exit(125) };
    }
    report(Failure {
        stage: Stage::Ready,
        errno: 0,
        index: 0,
    });
    let mut byte = 0u8;
    // SAFETY: reads one byte into a stack variable.
    let n = unsafe { libc::read(fds.start_r, (&mut byte as *mut u8).cast(), 1) };
    if n != 1 {
        // The handle was dropped without start.
        // SAFETY: as above.
        unsafe { libc::_exit(125) };
    }
    // SAFETY: our own fd.
    unsafe { libc::close(fds.start_r) };
    let f = finish(&LibcKernel, plan, argv, envp);
    report(f);
    let code = if f.stage == Stage::Exec {
        exec_exit_code(f.errno)
    } else {
        125
    };
    // SAFETY: as above.
    unsafe { libc::_exit(code) }
}
