//! Paths of an untrusted directory tree, resolved inside it by descriptor.
//!
//! An image's root file system is attacker input: its symlinks may point
//! at `/etc` or climb with `..`, and chain past any limit. A [`Root`]
//! holds a descriptor of the tree's top and resolves every path with
//! `openat2(2)` and `RESOLVE_IN_ROOT`, so the kernel treats the top as `/`
//! for `..`, absolute paths and absolute link targets alike, and ends link
//! chains with `ELOOP` after 40 hops. Missing directories are made one
//! component at a time with `mkdirat` on a descriptor found that way
//! ([`Root::mkdir_all`], [`Root::create_file`]); [`Root::copy_dir_to`]
//! copies a directory of the tree by descriptors alone; [`open_regular`]
//! opens a file only once it is known to be a regular one (never a FIFO or
//! device node a container swapped in). Nothing here joins
//! a path of the tree to a host path, and nothing here decides what to
//! create or where to mount: the callers (the runtime, the control plane)
//! do.
//!
//! ```no_run
//! # fn demo() -> Result<(), berth_fsroot::FsRootError> {
//! let root = berth_fsroot::Root::open("/var/lib/berth/containers/c1/rootfs")?;
//! let passwd = root.read_file("/etc/passwd", 1 << 20)?; // None when missing
//! root.mkdir_all("/var/lib/data", 0o755)?;
//! # let _ = passwd; Ok(()) }
//! ```

mod copy;
mod create;
mod regular;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

pub use copy::{Copied, MAX_COPY_DEPTH};
pub use regular::open_regular;

/// What failed, on which path of which root.
#[derive(Debug, thiserror::Error)]
pub enum FsRootError {
    /// A system call on `path` (a path inside `root`) failed.
    #[error("{what} {path} in {root}: {}", describe(.err))]
    Io {
        what: &'static str,
        path: String,
        root: PathBuf,
        #[source]
        err: io::Error,
    },
    /// A file was larger than its reader allows.
    #[error("reading {path} in {root}: larger than {limit} bytes")]
    TooLarge {
        path: String,
        root: PathBuf,
        limit: u64,
    },
    /// A copied tree nests deeper than [`MAX_COPY_DEPTH`].
    #[error(
        "copying {path} in {root}: nested more than {max} directories deep; berth does not copy deeper trees"
    )]
    TooDeep {
        path: String,
        root: PathBuf,
        max: usize,
    },
}

impl FsRootError {
    /// The errno behind an [`FsRootError::Io`].
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            FsRootError::Io { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the path (or a directory on it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.raw_os_error().map(Errno::from_raw_os_error),
            Some(Errno::NOENT) | Some(Errno::NOTDIR)
        )
    }
}

/// The kernel's words for ELOOP say nothing of images; these do.
fn describe(err: &io::Error) -> String {
    if err.raw_os_error() == Some(Errno::LOOP.raw_os_error()) {
        "too many levels of symbolic links: the image's links loop or chain past the kernel's limit of 40"
            .to_string()
    } else {
        err.to_string()
    }
}

/// How every path is resolved: inside the root, and never through
/// `/proc`-style magic links (which would reach outside any root).
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// `openat2` retries a lookup that raced a rename or mount with `EAGAIN`;
/// this many tries, then the error.
const RETRIES: usize = 128;

/// A directory opened as the `/` of the paths given to it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Root {
    /// Open `dir` (a host path the caller trusts, such as a mounted
    /// rootfs) as a root.
    pub fn open(dir: impl AsRef<Path>) -> Result<Root, FsRootError> {
        let path = dir.as_ref().to_path_buf();
        let fd = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FsRootError::Io {
            what: "opening",
            path: "/".into(),
            root: path.clone(),
            err: e.into(),
        })?;
        Ok(Root { fd, path })
    }

    /// A root from a directory descriptor the caller opened itself, such
    /// as `/proc/PID/root` of a running container; `path` names it in
    /// error messages.
    pub fn from_fd(fd: OwnedFd, path: impl Into<PathBuf>) -> Root {
        Root {
            fd,
            path: path.into(),
        }
    }

    /// Another handle on the same root (a duplicated descriptor).
    pub fn try_clone(&self) -> io::Result<Root> {
        Ok(Root {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The host directory this root is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `path` inside the root with `flags` (`O_CLOEXEC` is added),
    /// following symlinks as if the root were `/`. Add `O_NOFOLLOW` to
    /// refuse a final symlink.
    pub fn open_at(&self, path: impl AsRef<Path>, flags: OFlags) -> Result<OwnedFd, FsRootError> {
        let path = path.as_ref();
        self.resolve(&join(&components(path)), flags)
            .map_err(|e| self.error("opening", path, e))
    }

    /// The contents of the regular file at `path`, at most `limit` bytes;
    /// `None` when it does not exist or is not a regular file (a FIFO, a
    /// device, a directory is never opened, even one swapped in while we
    /// look: see [`open_regular`], and call this where `/proc` is the host's).
    pub fn read_file(
        &self,
        path: impl AsRef<Path>,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, FsRootError> {
        let path = path.as_ref();
        let rel = join(&components(path));
        let err = |e: Errno| self.error("reading", path, e);
        // Look without opening (see `regular`): opening a device node or a
        // FIFO has effects of its own.
        let probe = match self.resolve(&rel, OFlags::PATH) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        #[cfg(test)]
        tests::between_lookup_and_open();
        let Some((fd, _)) = open_regular(probe.as_fd()).map_err(err)? else {
            return Ok(None);
        };
        let mut data = Vec::new();
        let file = std::fs::File::from(fd);
        io::Read::read_to_end(
            &mut io::Read::take(file, limit.saturating_add(1)),
            &mut data,
        )
        .map_err(|e| self.io_error("reading", path, e))?;
        if data.len() as u64 > limit {
            return Err(FsRootError::TooLarge {
                path: shown(path),
                root: self.path.clone(),
                limit,
            });
        }
        Ok(Some(data))
    }

    /// `openat2` from the root, retried while it races a rename, with the
    /// kernel's errno: for callers with errors of their own. `rel` is a
    /// path as [`relative`] gives it (`O_CLOEXEC` is added).
    pub fn resolve(&self, rel: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.fd,
                rel,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            ) {
                Err(Errno::AGAIN) | Err(Errno::INTR) if tries < RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    pub(crate) fn error(&self, what: &'static str, path: &Path, e: Errno) -> FsRootError {
        self.io_error(what, path, e.into())
    }

    pub(crate) fn io_error(&self, what: &'static str, path: &Path, err: io::Error) -> FsRootError {
        FsRootError::Io {
            what,
            path: shown(path),
            root: self.path.clone(),
            err,
        }
    }
}

/// `path` as it is resolved from a root's descriptor: relative, without
/// empty or `.` components, `.` for the root itself. For callers that make
/// the `openat2` call themselves (a process that must not allocate).
pub fn relative(path: impl AsRef<Path>) -> Vec<u8> {
    let rel = join(&components(path.as_ref()));
    if rel.is_empty() { b".".to_vec() } else { rel }
}

/// `path` as its parent directory ([`relative`]) and its last component;
/// `None` when it has no last component that names an entry (the root,
/// or a path ending in `..`).
pub fn parent_and_name(path: impl AsRef<Path>) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts = components(path.as_ref());
    let name = parts.pop().filter(|n| n != b"..")?;
    let parent = join(&parts);
    Some((
        if parent.is_empty() {
            b".".to_vec()
        } else {
            parent
        },
        name,
    ))
}

/// A path as a message shows it.
pub(crate) fn shown(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The components of `path` that name something: no empty ones, no `.`;
/// `..` is kept (the kernel resolves it, inside the root).
pub(crate) fn components(path: &Path) -> Vec<Vec<u8>> {
    split(path.as_os_str().as_bytes())
}

pub(crate) fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

/// Components back to a relative path (empty for the root).
pub(crate) fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(&b'/')
}

#[cfg(test)]
mod tests;
