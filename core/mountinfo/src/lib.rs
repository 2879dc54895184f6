//! Reading the kernel's mount table (`/proc/self/mountinfo`). The kernel
//! writes a path field with space, tab, newline and backslash escaped as
//! `\ooo` (a root directory `/var/lib/my berth` appears as
//! `/var/lib/my\040berth`), so a path from the table must be unescaped
//! before it is compared with one berth holds; [`mount_point`] does that
//! for each line. Every reader of the table in berth (cgroup discovery,
//! snapshot mounts, start-up repair of the data directory) goes through
//! here. This crate only parses: it never mounts anything.
//!
//! ```
//! let line = r"36 35 0:31 / /var/lib/my\040berth rw,relatime - ext4 /dev/sda1 rw";
//! assert_eq!(
//!     berth_mountinfo::mount_point(line).unwrap(),
//!     std::path::Path::new("/var/lib/my berth")
//! );
//! ```

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The table of this process's mount namespace, empty if it cannot be
/// read (no `/proc`).
pub fn read_own() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

/// The mount point (fifth field) of one line of the table, unescaped.
pub fn mount_point(line: &str) -> Option<PathBuf> {
    line.split(' ').nth(4).map(unescape)
}

/// The per-mount options (sixth field, `rw,nosuid,…`) of one line.
pub fn mount_options(line: &str) -> Option<&str> {
    line.split(' ').nth(5)
}

/// Whether anything in `table` is mounted on exactly `target`.
pub fn is_mount_point(table: &str, target: &Path) -> bool {
    table
        .lines()
        .any(|l| mount_point(l).as_deref() == Some(target))
}

/// A path field of the table with its `\ooo` escapes undone. A backslash
/// not followed by three octal digits is kept as it is.
pub fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails loudly")]
    use super::*;

    #[test]
    fn unescapes_the_kernels_octal_escapes() {
        assert_eq!(unescape(r"/a\040b"), Path::new("/a b"));
        assert_eq!(unescape(r"/t\011a\012b\134c"), Path::new("/t\ta\nb\\c"));
        assert_eq!(unescape(r"/plain\"), Path::new(r"/plain\"));
        assert_eq!(unescape(r"/x\9"), Path::new(r"/x\9"));
    }

    #[test]
    fn finds_a_mount_point_with_a_space() {
        let table = "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n\
                     36 22 0:31 / /root\\040dir/c/rootfs rw,nosuid,nodev - overlay overlay rw\n";
        assert!(is_mount_point(table, Path::new("/root dir/c/rootfs")));
        assert!(!is_mount_point(table, Path::new(r"/root\040dir/c/rootfs")));
        assert!(!is_mount_point(table, Path::new("/root dir")));
        let line = table.lines().nth(1).unwrap();
        assert_eq!(mount_options(line), Some("rw,nosuid,nodev"));
    }
}
