//! A read-only view of an unpacked image rootfs that cannot be escaped.
//!
//! Every lookup goes through `openat2(2)` with `RESOLVE_IN_ROOT` on a file
//! descriptor of the root: the kernel resolves `..`, absolute symlink
//! targets and `/`-prefixed paths as if the root were `/`, so neither a
//! hostile path nor a hostile symlink inside the image can reach the host.
//! The kernel's own symlink limit (40 hops, `ELOOP`) ends link loops.
//! A file is looked at through an `O_PATH` descriptor and opened (through
//! that descriptor, `berth_fsroot::open_regular`) only when it is a
//! regular file, so a FIFO or device node in an image is never opened.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use berth_fsroot::Root;
use rustix::fs::{AtFlags, FileType, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

/// The most a single [`RootView::read`] returns.
pub const MAX_READ: u32 = 4 * 1024 * 1024;

/// The most entries [`RootView::list_dir`] returns for one directory.
pub const MAX_DIR_ENTRIES: usize = 100_000;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// One directory entry, or the answer to [`RootView::stat`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The file name (not the whole path); `/` for the root.
    pub name: String,
    pub kind: FileKind,
    /// Size in bytes for files, 0 for the rest.
    pub size: u64,
    /// `st_mode`: permission bits and file type.
    pub mode: u32,
    /// Where a symlink points, as stored.
    pub link_target: Option<String>,
}

/// Why a [`RootView`] call failed; mirrors `image-fs.fs-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotADirectory,
    #[error("is a directory")]
    IsADirectory,
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("refused: {0}")]
    Denied(String),
    #[error("{0}")]
    Io(String),
}

impl From<Errno> for FsError {
    fn from(e: Errno) -> FsError {
        match e {
            Errno::NOENT => FsError::NotFound,
            Errno::NOTDIR => FsError::NotADirectory,
            Errno::ISDIR => FsError::IsADirectory,
            Errno::LOOP => FsError::Denied("too many levels of symbolic links".into()),
            Errno::XDEV => FsError::Denied("path leaves the image".into()),
            other => FsError::Io(std::io::Error::from(other).to_string()),
        }
    }
}

/// A read-only view of a directory, used as an image's `/`.
#[derive(Debug)]
pub struct RootView {
    root: Root,
}

impl RootView {
    /// Opens `dir` as the root of the view.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<RootView> {
        let path = dir.as_ref();
        let root = Root::open(path).map_err(|e| {
            let kind = e
                .raw_os_error()
                .map(|code| std::io::Error::from_raw_os_error(code).kind())
                .unwrap_or(std::io::ErrorKind::Other);
            std::io::Error::new(kind, format!("opening image root {}: {e}", path.display()))
        })?;
        Ok(RootView { root })
    }

    /// Another handle on the same root (a duplicated descriptor), e.g. to
    /// hand to a scanner that outlives this borrow.
    pub fn try_clone(&self) -> std::io::Result<RootView> {
        Ok(RootView {
            root: self.root.try_clone()?,
        })
    }

    /// The host directory this view shows.
    pub fn host_path(&self) -> &Path {
        self.root.path()
    }

    /// The entries of a directory, sorted by name. Follows symlinks that
    /// stay inside the image.
    pub fn list_dir(&self, path: &str) -> Result<Vec<Entry>, FsError> {
        let rel = relative(path)?;
        let dir = self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut entries = Vec::new();
        for item in rustix::fs::Dir::read_from(&dir)? {
            let item = item?;
            let name = item.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if entries.len() == MAX_DIR_ENTRIES {
                return Err(FsError::Denied(format!(
                    "directory {path} has more than {MAX_DIR_ENTRIES} entries"
                )));
            }
            let name = String::from_utf8_lossy(name).into_owned();
            entries.push(entry_at(&dir, &name, name.clone())?);
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// One path, without following a final symlink.
    pub fn stat(&self, path: &str) -> Result<Entry, FsError> {
        let rel = relative(path)?;
        match rel.rsplit_once('/') {
            _ if rel.is_empty() => {
                let fd = self.resolve("", OFlags::PATH)?;
                entry_at(&fd, "", "/".into())
            }
            Some((_, "." | "..")) => self.stat_followed(rel),
            _ if rel == "." || rel == ".." => self.stat_followed(rel),
            Some((parent, name)) => {
                let dir = self.resolve(parent, OFlags::PATH | OFlags::DIRECTORY)?;
                entry_at(&dir, name, name.to_owned())
            }
            None => entry_at(self.root.as_fd(), rel, rel.to_owned()),
        }
    }

    /// Up to `len` bytes of a regular file from `offset`, at most
    /// [`MAX_READ`]; empty at the end. Follows symlinks inside the image.
    pub fn read(&self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        let rel = relative(path)?;
        // Looked at before it is opened: opening a device node or a FIFO
        // has effects of its own.
        let probe = self.resolve(rel, OFlags::PATH)?;
        let Some((fd, st)) = berth_fsroot::open_regular(probe.as_fd())? else {
            let st = rustix::fs::fstat(&probe)?;
            return Err(match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => FsError::IsADirectory,
                _ => FsError::Denied(format!("{path} is not a regular file")),
            });
        };
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let want = u64::from(len.min(MAX_READ)).min(size.saturating_sub(offset));
        let mut buf = vec![0u8; usize::try_from(want).unwrap_or(0)];
        let file = File::from(fd);
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FsError::Io(format!("reading {path}: {e}"))),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    fn stat_followed(&self, rel: &str) -> Result<Entry, FsError> {
        let fd = self.resolve(rel, OFlags::PATH)?;
        entry_at(&fd, "", rel.rsplit('/').next().unwrap_or(rel).to_owned())
    }

    /// Opens `rel` with the image as `/`.
    fn resolve(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, FsError> {
        let rel = if rel.is_empty() { "." } else { rel };
        self.root
            .resolve(rel.as_bytes(), flags)
            .map_err(FsError::from)
    }
}

/// Checks an in-image path and strips its leading `/`.
fn relative(path: &str) -> Result<&str, FsError> {
    if !path.starts_with('/') {
        return Err(FsError::InvalidPath(format!(
            "{path:?} is not absolute; image paths start with /"
        )));
    }
    if path.contains('\0') {
        return Err(FsError::InvalidPath(format!(
            "{path:?} contains a NUL byte"
        )));
    }
    Ok(path.trim_start_matches('/').trim_end_matches('/'))
}

/// `lstat` of `name` in `dir` (of `dir` itself when `name` is empty).
fn entry_at(dir: impl AsFd, name: &str, shown: String) -> Result<Entry, FsError> {
    let dir = dir.as_fd();
    let flags = if name.is_empty() {
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    let st = rustix::fs::statat(dir, name, flags)?;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Directory,
        FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let link_target = if kind == FileKind::Symlink {
        let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
        Some(target.to_string_lossy().into_owned())
    } else {
        None
    };
    Ok(Entry {
        name: shown,
        kind,
        size: if kind == FileKind::File {
            u64::try_from(st.st_size).unwrap_or(0)
        } else {
            0
        },
        mode: st.st_mode,
        link_target,
    })
}
