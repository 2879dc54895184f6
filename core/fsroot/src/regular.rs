//! Opening a regular file found by an `O_PATH` descriptor, and nothing else.
//!
//! Opening a file has effects of its own when it is not a regular file: a
//! FIFO's blocked writer wakes up, `/dev/watchdog` arms a watchdog, a tape
//! rewinds. A tree a container can write to may hold such nodes, and may
//! swap one in for a regular file at any moment, so "look at the path,
//! then open the path" opens whatever is there by the second lookup; a
//! check of the descriptor after the open comes too late. Here the look
//! and the open are of one inode: the caller finds the file as an `O_PATH`
//! descriptor (which opens nothing), [`open_regular`] checks its type
//! through that descriptor and, only for a regular file, reopens that very
//! inode through its `/proc/self/fd/N` magic link. No path of the tree is
//! looked up again.
//!
//! The magic link is resolved in the caller's `/proc`: call this where
//! `/proc` is the host's (the daemon), never after joining a container's
//! mount namespace, whose `/proc` the container may have replaced.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags, Stat};

/// The regular file `path_fd` names (an `O_PATH` descriptor, or any other),
/// opened for reading without blocking, with its metadata; `None` when it
/// is anything else (a directory, a symlink, a FIFO, a device, a socket),
/// which is never opened.
pub fn open_regular(path_fd: BorrowedFd<'_>) -> rustix::io::Result<Option<(OwnedFd, Stat)>> {
    let looked = rustix::fs::fstat(path_fd)?;
    if FileType::from_raw_mode(looked.st_mode) != FileType::RegularFile {
        return Ok(None);
    }
    let fd = rustix::fs::open(
        format!("/proc/self/fd/{}", path_fd.as_raw_fd()),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    // The magic link leads to the descriptor's own inode; anything else
    // (a `/proc` that is not the kernel's) is not the file looked at.
    if (st.st_dev, st.st_ino) != (looked.st_dev, looked.st_ino)
        || FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
    {
        return Ok(None);
    }
    Ok(Some((fd, st)))
}
