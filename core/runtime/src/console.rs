//! The container's terminal (`process.terminal` in the spec): its init
//! opens a pty in the container's own devpts and hands the master side to
//! the caller over a socket pair (as runc's console socket), since the
//! two processes share no fd table.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::kernel::Errno;

/// Room for one `cmsghdr` carrying one fd, 8-byte aligned (CMSG_SPACE(4) is 24).
type CmsgBuf = [u64; 4];

/// In the child: send `fd` over `sock` with one byte of data. Makes no
/// allocation (it runs between clone and exec).
pub(crate) fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), Errno> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg: CmsgBuf = [0; 4];
    // SAFETY: an all-zero msghdr is valid; every pointer set below points
    // into locals that outlive the sendmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic.
    // `as _`: msg_controllen and cmsg_len are size_t in glibc, socklen_t in musl.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as _;
    // SAFETY: msg_control points at a zeroed buffer at least
    // CMSG_SPACE(4) long, so the first header and its data fit.
    let rc = unsafe {
        let hdr = libc::CMSG_FIRSTHDR(&msg);
        (*hdr).cmsg_level = libc::SOL_SOCKET;
        (*hdr).cmsg_type = libc::SCM_RIGHTS;
        (*hdr).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(hdr).cast::<RawFd>(), fd);
        libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    Ok(())
}

/// In the parent: the fd sent by [`send_fd`], close-on-exec; `None` if
/// the peer closed the socket without sending one.
pub(crate) fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg: CmsgBuf = [0; 4];
    // SAFETY: as in send_fd; the buffers are locals that outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<CmsgBuf>() as _;
    let n = loop {
        // SAFETY: see above.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break n;
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled msg_control and set msg_controllen; the
    // CMSG macros walk only within it.
    unsafe {
        let hdr = libc::CMSG_FIRSTHDR(&msg);
        if hdr.is_null()
            || (*hdr).cmsg_level != libc::SOL_SOCKET
            || (*hdr).cmsg_type != libc::SCM_RIGHTS
        {
            return Ok(None);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(hdr).cast::<RawFd>());
        // The kernel installed this fd in our table just now, for us alone.
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}

/// Set the window size of the terminal whose master (or slave) is `fd`;
/// the kernel signals SIGWINCH to the terminal's foreground process group.
pub fn resize_terminal(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn an_fd_crosses_a_socket_pair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(a.as_raw_fd(), w.as_raw_fd()).unwrap();
        drop(w);
        let got = recv_fd(b.as_fd()).unwrap().unwrap();
        nix::unistd::write(&got, b"via the copy").unwrap();
        drop(got);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
        assert_eq!(out, "via the copy");
        drop(a);
        assert!(recv_fd(b.as_fd()).unwrap().is_none(), "EOF is no fd");
    }
}
