//! The kernel calls the container's child process makes, behind a trait
//! (youki's `Syscall`), so the order of setup can be checked by a
//! recording fake without root; [`LibcKernel`] is the real one and is
//! tested as root by the integration tests.
//!
//! Every method is called between `clone` and `execve` and so must not
//! allocate (see `plan.rs`); errors are plain errno values.

use std::ffi::CStr;
use std::os::fd::RawFd;

/// An errno value.
pub(crate) type Errno = i32;

/// What a mount is of: a path (a host path we trust, or a file system's
/// name such as `tmpfs`), or what a descriptor from
/// [`Kernel::open_in`] is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    Path(&'a CStr),
    Fd(RawFd),
}

/// `/proc/self/fd/N` for a descriptor, built on the stack (the child must
/// not allocate). This is how runc mounts onto a descriptor.
struct FdPath([u8; 32]);

impl FdPath {
    fn new(fd: RawFd) -> FdPath {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut buf = [0u8; 32];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut digits = [0u8; 10];
        let (mut n, mut len) = (fd.unsigned_abs(), 0);
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[PREFIX.len() + i] = digits[len - 1 - i];
        }
        // The rest of the buffer is zeros: the string is NUL-terminated.
        FdPath(buf)
    }

    fn as_ptr(&self) -> *const libc::c_char {
        self.0.as_ptr().cast()
    }
}

pub(crate) trait Kernel {
    fn umask(&self, mode: libc::mode_t);
    /// dup2, or clearing FD_CLOEXEC when `fd == target`.
    fn dup_to(&self, fd: RawFd, target: RawFd) -> Result<(), Errno>;
    /// `close_range(first, last, 0)`: close every fd in `first..=last`.
    fn close_range(&self, first: u32, last: u32) -> Result<(), Errno>;
    /// The highest number an fd of ours can have, plus one: the larger of
    /// the soft and hard `RLIMIT_NOFILE` (fds are numbered below the soft
    /// limit in force when they were opened).
    fn fd_limit(&self) -> u64;
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), Errno>;
    fn umount_detach(&self, target: &CStr) -> Result<(), Errno>;
    /// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`, for a host
    /// directory we trust (the rootfs itself).
    fn open_dir(&self, path: &CStr) -> Result<RawFd, Errno>;
    /// `openat2(root, path, flags | O_CLOEXEC)` with `RESOLVE_IN_ROOT |
    /// RESOLVE_NO_MAGICLINKS`: `path` resolved as if `root` were `/`, so no
    /// link of the image's leads out of it.
    fn open_in(&self, root: RawFd, path: &CStr, flags: libc::c_int) -> Result<RawFd, Errno>;
    /// mount(2) onto what `target` (a descriptor from [`open_in`](Kernel::open_in))
    /// is, by its `/proc/self/fd` name: nothing is looked up by path again.
    fn mount_on(
        &self,
        source: Option<Source<'_>>,
        target: RawFd,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), Errno>;
    /// mkdirat; an existing entry is fine.
    fn mkdirat(&self, dir: RawFd, name: &CStr) -> Result<(), Errno>;
    /// An empty file `name` in `dir` if there is none (never through a link).
    fn create_at(&self, dir: RawFd, name: &CStr) -> Result<(), Errno>;
    /// A device node; `mode` is `S_IFCHR` or `S_IFBLK` with the permissions.
    fn mknodat(
        &self,
        dir: RawFd,
        name: &CStr,
        mode: libc::mode_t,
        major: u32,
        minor: u32,
    ) -> Result<(), Errno>;
    fn symlinkat(&self, target: &CStr, dir: RawFd, name: &CStr) -> Result<(), Errno>;
    fn is_dir_fd(&self, fd: RawFd) -> Result<bool, Errno>;
    fn chdir(&self, path: &CStr) -> Result<(), Errno>;
    /// `pivot_root(".", ".")`.
    fn pivot_root_here(&self) -> Result<(), Errno>;
    fn sethostname(&self, name: &CStr) -> Result<(), Errno>;
    fn unshare(&self, flags: libc::c_int) -> Result<(), Errno>;
    fn setrlimit(&self, resource: libc::c_int, limit: &libc::rlimit) -> Result<(), Errno>;
    fn prctl(&self, option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno>;
    fn seccomp(&self, program: &[seccompiler::sock_filter]) -> Result<(), Errno>;
    fn setgroups(&self, groups: &[libc::gid_t]) -> Result<(), Errno>;
    fn setresgid(&self, gid: libc::gid_t) -> Result<(), Errno>;
    fn setresuid(&self, uid: libc::uid_t) -> Result<(), Errno>;
    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno>;
    fn raise_ambient(&self, cap: u8) -> Result<(), Errno>;
    /// Default signal dispositions and an empty signal mask.
    fn reset_signals(&self);
    /// A new pseudo-terminal from `/dev/ptmx`: (master, slave), both close-on-exec.
    fn open_pty(&self) -> Result<(RawFd, RawFd), Errno>;
    /// `fchown(fd, uid, -1)`.
    fn fchown(&self, fd: RawFd, uid: libc::uid_t) -> Result<(), Errno>;
    /// A new session whose controlling terminal is `fd` (setsid, TIOCSCTTY).
    fn make_controlling_terminal(&self, fd: RawFd) -> Result<(), Errno>;
    /// Pass `fd` over the unix socket `sock` (SCM_RIGHTS).
    fn send_fd(&self, sock: RawFd, fd: RawFd) -> Result<(), Errno>;
    fn close(&self, fd: RawFd);
    /// Returns only on failure, with its errno.
    fn execve(
        &self,
        path: &CStr,
        argv: &[*const libc::c_char],
        envp: &[*const libc::c_char],
    ) -> Errno;
}

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn ok(rc: libc::c_long) -> Result<(), Errno> {
    if rc < 0 { Err(errno()) } else { Ok(()) }
}

fn opt(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

/// The real kernel, through libc. Calls that glibc broadcasts to every
/// thread it knows (setgroups, setres[ug]id) are raw syscalls: after a raw
/// clone, glibc's thread list names threads that are not ours.
pub(crate) struct LibcKernel;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

// SAFETY (for every block below): each is one libc call on valid,
// NUL-terminated strings or plain values borrowed for the call's duration.
impl Kernel for LibcKernel {
    fn umask(&self, mode: libc::mode_t) {
        // SAFETY: see above.
        unsafe { libc::umask(mode) };
    }

    fn dup_to(&self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        if fd == target {
            // SAFETY: see above.
            return ok(unsafe { libc::fcntl(target, libc::F_SETFD, 0) }.into());
        }
        // SAFETY: see above.
        ok(unsafe { libc::dup2(fd, target) }.into())
    }

    fn close_range(&self, first: u32, last: u32) -> Result<(), Errno> {
        // SAFETY: see above; closing fds of our own, private table.
        ok(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) })
    }

    fn fd_limit(&self) -> u64 {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: see above; `limit` is ours.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
            return u64::MAX;
        }
        limit.rlim_cur.max(limit.rlim_max)
    }

    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), Errno> {
        let data = opt(data).cast::<libc::c_void>();
        // SAFETY: see above.
        ok(unsafe { libc::mount(opt(source), target.as_ptr(), opt(fstype), flags, data) }.into())
    }

    fn umount_detach(&self, target: &CStr) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) }.into())
    }

    fn open_dir(&self, path: &CStr) -> Result<RawFd, Errno> {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: see above.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        if fd < 0 { Err(errno()) } else { Ok(fd) }
    }

    fn open_in(&self, root: RawFd, path: &CStr, flags: libc::c_int) -> Result<RawFd, Errno> {
        // SAFETY: an all-zero open_how is a valid value (no flags, no mode).
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        // A lookup that raced a rename is retried, a bounded number of times.
        for _ in 0..128 {
            // SAFETY: see above; `how` is ours and its size is passed.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    root,
                    path.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if fd >= 0 {
                return Ok(fd as RawFd);
            }
            match errno() {
                libc::EAGAIN | libc::EINTR => continue,
                e => return Err(e),
            }
        }
        Err(libc::EAGAIN)
    }

    fn mount_on(
        &self,
        source: Option<Source<'_>>,
        target: RawFd,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), Errno> {
        let source_fd = match source {
            Some(Source::Fd(fd)) => Some(FdPath::new(fd)),
            _ => None,
        };
        let source = match (source, &source_fd) {
            (Some(Source::Path(p)), _) => p.as_ptr(),
            (_, Some(fd)) => fd.as_ptr(),
            _ => std::ptr::null(),
        };
        let target = FdPath::new(target);
        let data = opt(data).cast::<libc::c_void>();
        // SAFETY: see above; the /proc paths are NUL-terminated stack buffers.
        ok(unsafe { libc::mount(source, target.as_ptr(), opt(fstype), flags, data) }.into())
    }

    fn mkdirat(&self, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        // SAFETY: see above.
        match ok(unsafe { libc::mkdirat(dir, name.as_ptr(), 0o755) }.into()) {
            Err(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    fn create_at(&self, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: see above.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, 0o644) };
        if fd < 0 {
            return Err(errno());
        }
        // SAFETY: closing the fd just opened.
        unsafe { libc::close(fd) };
        Ok(())
    }

    fn mknodat(
        &self,
        dir: RawFd,
        name: &CStr,
        mode: libc::mode_t,
        major: u32,
        minor: u32,
    ) -> Result<(), Errno> {
        let dev = libc::makedev(major, minor);
        // SAFETY: see above.
        ok(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) }.into())
    }

    fn symlinkat(&self, target: &CStr, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }.into())
    }

    fn is_dir_fd(&self, fd: RawFd) -> Result<bool, Errno> {
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: see above; `st` is ours.
        ok(unsafe { libc::fstat(fd, &mut st) }.into())?;
        Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    }

    fn chdir(&self, path: &CStr) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::chdir(path.as_ptr()) }.into())
    }

    fn pivot_root_here(&self) -> Result<(), Errno> {
        let dot = c".".as_ptr();
        // SAFETY: see above.
        ok(unsafe { libc::syscall(libc::SYS_pivot_root, dot, dot) })
    }

    fn sethostname(&self, name: &CStr) -> Result<(), Errno> {
        let len = name.to_bytes().len();
        // SAFETY: see above.
        ok(unsafe { libc::sethostname(name.as_ptr(), len) }.into())
    }

    fn unshare(&self, flags: libc::c_int) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::unshare(flags) }.into())
    }

    fn setrlimit(&self, resource: libc::c_int, limit: &libc::rlimit) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::setrlimit(resource as _, limit) }.into())
    }

    fn prctl(&self, option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe {
            libc::prctl(
                option,
                arg,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        }
        .into())
    }

    fn seccomp(&self, program: &[seccompiler::sock_filter]) -> Result<(), Errno> {
        let len = u16::try_from(program.len()).map_err(|_| libc::E2BIG)?;
        let fprog = libc::sock_fprog {
            len,
            // The kernel only reads the program.
            filter: program.as_ptr().cast_mut().cast(),
        };
        let arg = &fprog as *const libc::sock_fprog as libc::c_ulong;
        // SAFETY: see above; `fprog` and the program outlive the call.
        let rc = unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, arg, 0, 0) };
        ok(rc.into())
    }

    fn setgroups(&self, groups: &[libc::gid_t]) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })
    }

    fn setresgid(&self, gid: libc::gid_t) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })
    }

    fn setresuid(&self, uid: libc::uid_t) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
    }

    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
        let mut header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: effective as u32,
                permitted: permitted as u32,
                inheritable: inheritable as u32,
            },
            CapData {
                effective: (effective >> 32) as u32,
                permitted: (permitted >> 32) as u32,
                inheritable: (inheritable >> 32) as u32,
            },
        ];
        // SAFETY: see above; header and data are ours and v3-shaped.
        ok(unsafe {
            libc::syscall(
                libc::SYS_capset,
                &mut header as *mut CapHeader,
                data.as_ptr(),
            )
        })
    }

    fn raise_ambient(&self, cap: u8) -> Result<(), Errno> {
        let (raise, cap) = (
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
        );
        // SAFETY: see above.
        ok(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                raise,
                cap,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        }
        .into())
    }

    fn reset_signals(&self) {
        // SAFETY: see above; `set` is ours.
        unsafe {
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        }
    }

    fn open_pty(&self) -> Result<(RawFd, RawFd), Errno> {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: see above.
        let master = unsafe { libc::open(c"/dev/ptmx".as_ptr(), flags) };
        if master < 0 {
            return Err(errno());
        }
        let unlock: libc::c_int = 0;
        // SAFETY: see above; TIOCSPTLCK reads an int we own. TIOCGPTPEER
        // opens the slave without a path (none to format: no allocation).
        let slave = unsafe {
            if libc::ioctl(master, libc::TIOCSPTLCK, &unlock) < 0 {
                -1
            } else {
                libc::ioctl(master, libc::TIOCGPTPEER, flags)
            }
        };
        if slave < 0 {
            let e = errno();
            // SAFETY: closing the fd just opened.
            unsafe { libc::close(master) };
            return Err(e);
        }
        Ok((master, slave))
    }

    fn fchown(&self, fd: RawFd, uid: libc::uid_t) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::fchown(fd, uid, libc::gid_t::MAX) }.into())
    }

    fn make_controlling_terminal(&self, fd: RawFd) -> Result<(), Errno> {
        // SAFETY: see above.
        ok(unsafe { libc::setsid() }.into())?;
        // SAFETY: see above.
        ok(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }.into())
    }

    fn send_fd(&self, sock: RawFd, fd: RawFd) -> Result<(), Errno> {
        crate::console::send_fd(sock, fd)
    }

    fn close(&self, fd: RawFd) {
        // SAFETY: see above; an fd of our own table.
        unsafe { libc::close(fd) };
    }

    fn execve(
        &self,
        path: &CStr,
        argv: &[*const libc::c_char],
        envp: &[*const libc::c_char],
    ) -> Errno {
        // SAFETY: argv and envp are NULL-terminated arrays of pointers to
        // C strings that outlive the call.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        errno()
    }
}
