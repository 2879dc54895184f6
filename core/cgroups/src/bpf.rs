//! The `bpf(2)` calls that put a device filter on a cgroup v2 directory:
//! load the program, attach it with `BPF_F_ALLOW_MULTI` (so the parents'
//! filters still run), then detach the filters attached there before, so
//! an update replaces the old program without a moment in which none
//! applies (for that moment both do, which only narrows access).
//!
//! Nothing is kept open: once attached, the cgroup holds the program, and
//! the kernel frees it when the cgroup is removed. Reached only through
//! [`crate::HostFs`]; the program itself comes from `device_filter.rs`.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use crate::device_filter::Insn;

// linux/bpf.h
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// The kernel allows at most 64 programs per attach point and cgroup.
const MAX_PROGRAMS: usize = 64;

/// Not GPL: cgroup device programs call no GPL-only helper. runc uses the
/// same string.
const LICENSE: &[u8] = b"Apache\0";
/// What `bpftool prog` shows for berth's filters.
const NAME: &[u8] = b"berth_devices";

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `prog_name`; the kernel
/// zero-fills what a shorter attribute leaves out.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `union bpf_attr` for `BPF_PROG_ATTACH` and `BPF_PROG_DETACH`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// `union bpf_attr` for `BPF_PROG_QUERY`, up to `prog_cnt` (and the
/// padding after it, which must be zero).
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for `BPF_PROG_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, sizeof attr)`: the result, or the error.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` prefix of
    // `union bpf_attr` for `cmd`, and the size passed is its own; any
    // pointers in it point to buffers the caller keeps alive across the
    // call, sized as the counts in it say.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The file descriptor a successful `bpf` call returned.
fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf returned a bad descriptor"))?;
    // SAFETY: the kernel just returned this new descriptor to us, and
    // nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    // Descriptors are never negative.
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// Load `insns` as a cgroup device program.
fn load(insns: &[Insn]) -> io::Result<OwnedFd> {
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::other("device filter too long"))?,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        ..LoadAttr::default()
    };
    attr.prog_name[..NAME.len()].copy_from_slice(NAME);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => owned(fd),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Again, with the verifier's reasons.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = u32::try_from(log.len()).unwrap_or(0);
            attr.log_buf = log.as_mut_ptr() as u64;
            let again = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]);
            match again {
                Ok(fd) => owned(fd),
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("{e}; the verifier said: {}", log.trim()),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

fn open_dir(cgroup: &Path) -> io::Result<OwnedFd> {
    let path = CString::new(cgroup.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `open` just returned this new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The ids of the device programs attached to the cgroup itself (not
/// inherited from its parents).
fn query(dir: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; MAX_PROGRAMS];
    let mut attr = QueryAttr {
        target_fd: fd_u32(dir),
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).unwrap_or(0),
        ..QueryAttr::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(usize::try_from(attr.prog_cnt).unwrap_or(0));
    Ok(ids)
}

fn attach_op(cmd: libc::c_long, dir: &OwnedFd, prog: &OwnedFd, flags: u32) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(dir),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
    };
    bpf(cmd, &mut attr).map(drop)
}

/// A descriptor for the loaded program `id`.
fn program_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..GetFdAttr::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).and_then(owned)
}

/// Load `insns` and make it the cgroup's one device filter: attach it,
/// then detach every filter that was attached there before.
pub(crate) fn replace_device_filter(cgroup: &Path, insns: &[Insn]) -> io::Result<()> {
    let prog = load(insns)?;
    let dir = open_dir(cgroup)?;
    let old = query(&dir)?;
    attach_op(BPF_PROG_ATTACH, &dir, &prog, BPF_F_ALLOW_MULTI)?;
    for id in old {
        match program_by_id(id) {
            Ok(old) => attach_op(BPF_PROG_DETACH, &dir, &old, 0)?,
            // Gone meanwhile, or hidden from us by an LSM: either way a
            // filter left attached can only narrow access further.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EPERM | libc::EACCES)
                ) =>
            {
                tracing::debug!(id, error = %e, "leaving an old device filter attached");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The ids of the device filters attached to the cgroup v2 directory
/// `cgroup` itself: for diagnostics, and for tests that check a filter is
/// there (or gone).
pub fn device_filters(cgroup: &Path) -> io::Result<Vec<u32>> {
    query(&open_dir(cgroup)?)
}

/// Whether a BPF program with this id is still loaded (a filter on a
/// removed cgroup is freed, a little after the `rmdir`).
pub fn program_loaded(id: u32) -> io::Result<bool> {
    match program_by_id(id) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}
