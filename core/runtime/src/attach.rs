//! The attach protocol between berthd and a container's monitor
//! (`berth-shim`), over the unix socket [`SOCKET`] in the container's
//! directory, which the monitor serves for containers created with `-i`
//! or `-t`. Both directions are frames of Docker's multiplexed-stream
//! shape: `[kind, 0, 0, 0, payload length as u32 big-endian]` and the
//! payload.
//!
//! A connection's first frame says what it is for: [`ATTACH`] (then the
//! monitor sends the container's output as [`STDOUT`]/[`STDERR`] frames,
//! and [`EXIT`] when the run ends, and reads [`STDIN`], [`CLOSE_STDIN`]
//! and [`RESIZE`] frames), or a lone [`RESIZE`]. One client is attached
//! at a time: a new one takes the place of the previous, whose connection
//! is closed. The output is in the container log whether or not anyone
//! is attached.
//!
//! ```
//! use berth_runtime::attach;
//! let hello = attach::hello(true);
//! assert_eq!(attach::split(&hello), Ok(Some((attach::ATTACH, &[1u8][..]))));
//! ```

use std::path::PathBuf;

/// The socket's file name in the container's directory.
pub const SOCKET: &str = "attach.sock";

/// Client → monitor: attach; payload one byte, 1 to send stdin.
pub const ATTACH: u8 = b'a';
/// Client → monitor: bytes for the container's stdin (Docker's stream 0).
pub const STDIN: u8 = 0;
/// Client → monitor: this client's stdin ended.
pub const CLOSE_STDIN: u8 = b'c';
/// Client → monitor: the terminal's size, rows then columns, u16 big-endian each.
pub const RESIZE: u8 = b'r';

/// Monitor → client: the container's stdout (and its terminal's output).
pub const STDOUT: u8 = 1;
/// Monitor → client: the container's stderr.
pub const STDERR: u8 = 2;
/// Monitor → client: the run ended; the payload is its exit code in decimal.
pub const EXIT: u8 = 3;

/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// A frame header claims more than [`MAX_PAYLOAD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an attach frame of {0} bytes is larger than the {MAX_PAYLOAD} allowed")]
pub struct FrameTooLarge(pub usize);

/// The 8-byte header of a frame.
pub fn header(kind: u8, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [kind, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// A whole frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&header(kind, payload.len()));
    f.extend_from_slice(payload);
    f
}

/// The first frame of an attaching client.
pub fn hello(stdin: bool) -> Vec<u8> {
    frame(ATTACH, &[u8::from(stdin)])
}

/// A resize frame.
pub fn resize(rows: u16, cols: u16) -> Vec<u8> {
    let (r, c) = (rows.to_be_bytes(), cols.to_be_bytes());
    frame(RESIZE, &[r[0], r[1], c[0], c[1]])
}

/// The (rows, columns) of a resize frame's payload.
pub fn size_of_resize(payload: &[u8]) -> Option<(u16, u16)> {
    match payload {
        [r0, r1, c0, c1] => Some((
            u16::from_be_bytes([*r0, *r1]),
            u16::from_be_bytes([*c0, *c1]),
        )),
        _ => None,
    }
}

/// The first whole frame at the start of `buf`: its kind and payload
/// (the frame is `8 + payload.len()` bytes); `None` if more bytes are needed.
pub fn split(buf: &[u8]) -> Result<Option<(u8, &[u8])>, FrameTooLarge> {
    let Some(h) = buf.first_chunk::<8>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameTooLarge(len));
    }
    Ok(buf.get(8..8 + len).map(|p| (h[0], p)))
}

/// The path to bind or connect [`SOCKET`] through, given an open fd of
/// the container's directory: a unix socket's path holds at most 107
/// bytes, and a container's directory (64 hex digits under the daemon's
/// root) can be longer than that on its own.
pub fn socket_path(dir_fd: std::os::fd::RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{dir_fd}/{SOCKET}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_whole_or_not_at_all() {
        let mut buf = frame(STDIN, b"hello");
        buf.extend_from_slice(&resize(24, 80));
        assert_eq!(split(&buf[..7]), Ok(None));
        assert_eq!(split(&buf[..12]), Ok(None));
        assert_eq!(split(&buf), Ok(Some((STDIN, &b"hello"[..]))));
        let (kind, payload) = split(&buf[13..]).ok().flatten().unwrap_or_default();
        assert_eq!((kind, size_of_resize(payload)), (RESIZE, Some((24, 80))));
        assert_eq!(size_of_resize(b"abc"), None);
        assert_eq!(
            split(&header(STDIN, MAX_PAYLOAD + 1)),
            Err(FrameTooLarge(MAX_PAYLOAD + 1))
        );
    }
}
