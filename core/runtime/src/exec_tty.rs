//! `exec -t`: a pseudo-terminal from the container's own devpts (opened
//! after joining its mount namespace, so the command sees `/dev/pts/N`),
//! the command's controlling terminal, and the copy between our standard
//! streams and its master side.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::RuntimeError;

/// Both ends of a pseudo-terminal.
pub(crate) struct Pty {
    pub master: File,
    pub slave: OwnedFd,
}

fn sys(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> RuntimeError {
    move |e| RuntimeError::Sys {
        what,
        err: e.into(),
    }
}

/// A pty of `rows` × `cols` from `/dev/ptmx` of the current mount namespace.
pub(crate) fn open(rows: u16, cols: u16) -> Result<Pty, RuntimeError> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("opening the container's /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(sys("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(sys("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(sys("ptsname"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("opening the pty's slave side"))?;
    // SAFETY: `open` returned this fd just now; we own it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    let master_fd = master.as_raw_fd();
    // The PtyMaster would close the fd on drop: keep it as a File instead.
    std::mem::forget(master);
    // SAFETY: the fd came from posix_openpt and is now owned by the File only.
    let master = unsafe { File::from_raw_fd(master_fd) };
    Ok(Pty { master, slave })
}

/// In the child: a new session with the slave as controlling terminal and
/// standard streams. Returns the errno on failure.
pub(crate) fn attach(slave: &OwnedFd) -> Result<(), i32> {
    let fd = slave.as_raw_fd();
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // SAFETY: plain syscalls on an fd we hold; no memory is shared.
    unsafe {
        if libc::setsid() < 0 {
            return Err(errno());
        }
        if libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
            return Err(errno());
        }
        for target in 0..3 {
            if libc::dup2(fd, target) < 0 {
                return Err(errno());
            }
        }
    }
    Ok(())
}

/// In the parent: our stdin to the master (if `stdin`), the master to
/// our stdout, until the terminal's last user is gone (EIO). One thread
/// with poll: after joining a PID namespace we may not start threads.
pub(crate) fn relay(master: &File, stdin: bool) {
    let mut out = io::stdout();
    let mut buf = [0u8; 8192];
    let mut master = master;
    let mut stdin_open = stdin;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                // A negative fd is ignored by poll.
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll writes only the revents of the array we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            match io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => {
                    // EOF on a terminal is ^D at the start of a line.
                    let _ = master.write_all(&[4]);
                    stdin_open = false;
                }
                Ok(n) => {
                    if master.write_all(&buf[..n]).is_err() {
                        stdin_open = false;
                    }
                }
            }
        }
        if fds[0].revents != 0 {
            match master.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EIO: every holder of the slave side is gone.
                Err(_) => return,
            }
        }
    }
}
