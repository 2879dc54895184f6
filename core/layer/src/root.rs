//! A directory that layer entries are written beneath, and the only place in
//! this crate that turns entry paths into file-system operations.
//!
//! Every path is walked one component at a time from the root's file
//! descriptor with `O_NOFOLLOW|O_DIRECTORY`, so no symlink is ever followed —
//! whether the layer planted it earlier in the same stream or an earlier layer
//! did. The final component is only ever created, unlinked or changed through
//! `*at` calls on its parent's descriptor with `AT_SYMLINK_NOFOLLOW`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::LayerError;
use crate::error::errno;

/// Ownership, permissions, times and extended attributes of one entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    pub(crate) fn timestamps(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: self.mtime_sec,
            tv_nsec: self.mtime_nsec.into(),
        };
        // atime is not part of a layer; mtime is the deterministic choice.
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }
}

/// Why walking to a directory failed, before it is given an entry name.
pub(crate) enum WalkError {
    Symlink(usize),
    NotDir(usize),
    Missing(usize),
    Io(std::io::Error),
}

pub(crate) struct Root {
    fd: OwnedFd,
    /// The last parent directory walked to, by its normalized path: tar
    /// streams list siblings together, so most entries reuse it. An entry
    /// only ever removes children of its parent, never the parent itself,
    /// so the cached descriptor cannot go stale under a later entry.
    cache: Option<(Vec<u8>, OwnedFd)>,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

impl Root {
    pub(crate) fn open(path: &Path) -> Result<Self, LayerError> {
        let fd = rustix::fs::openat(CWD, path, DIR_FLAGS, Mode::empty())
            .map_err(|e| LayerError::io("opening target directory", path)(errno(e)))?;
        Ok(Root { fd, cache: None })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Open the directory at `dir` (a normalized relative path, empty for the
    /// root), creating missing components with mode 0755 when `create`.
    pub(crate) fn walk(&self, dir: &[u8], create: bool) -> Result<OwnedFd, WalkError> {
        let mut fd = rustix::fs::openat(self.fd.as_fd(), c".", DIR_FLAGS, Mode::empty())
            .map_err(|e| WalkError::Io(errno(e)))?;
        for (i, comp) in split(dir).enumerate() {
            let next = match rustix::fs::openat(fd.as_fd(), comp, DIR_FLAGS, Mode::empty()) {
                Ok(next) => next,
                Err(Errno::NOENT) if create => {
                    let made =
                        match rustix::fs::mkdirat(fd.as_fd(), comp, Mode::from_raw_mode(0o755)) {
                            Ok(()) => true,
                            Err(Errno::EXIST) => false,
                            Err(e) => return Err(WalkError::Io(errno(e))),
                        };
                    let next = rustix::fs::openat(fd.as_fd(), comp, DIR_FLAGS, Mode::empty())
                        .map_err(|e| classify(fd.as_fd(), comp, e, i))?;
                    // 0755 whatever berthd's umask (0077) would leave: an
                    // implied parent is a directory of the image like any.
                    if made {
                        rustix::fs::fchmod(&next, Mode::from_raw_mode(0o755))
                            .map_err(|e| WalkError::Io(errno(e)))?;
                    }
                    next
                }
                Err(e) => return Err(classify(fd.as_fd(), comp, e, i)),
            };
            fd = next;
        }
        Ok(fd)
    }

    /// The parent directory of an entry, through the one-entry cache.
    pub(crate) fn parent(&mut self, entry: &str, dir: &[u8]) -> Result<BorrowedFd<'_>, LayerError> {
        let hit = matches!(&self.cache, Some((p, _)) if p.as_slice() == dir);
        if !hit {
            let fd = self
                .walk(dir, true)
                .map_err(|e| walk_error(entry, dir, e))?;
            self.cache = Some((dir.to_vec(), fd));
        }
        match &self.cache {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(LayerError::Entry {
                op: "resolving parent directory",
                entry: entry.to_string(),
                source: std::io::Error::other("parent cache empty"),
            }),
        }
    }
}

/// Turn a walk failure into an error naming the entry and the component.
pub(crate) fn walk_error(entry: &str, dir: &[u8], e: WalkError) -> LayerError {
    let prefix = |i: usize| -> String {
        let parts: Vec<&[u8]> = split(dir).take(i + 1).collect();
        String::from_utf8_lossy(&parts.join(&b'/')).into_owned()
    };
    match e {
        WalkError::Symlink(i) => LayerError::ThroughSymlink {
            entry: entry.to_string(),
            component: prefix(i),
        },
        WalkError::NotDir(i) | WalkError::Missing(i) => LayerError::NotADirectory {
            entry: entry.to_string(),
            component: prefix(i),
        },
        WalkError::Io(source) => LayerError::Entry {
            op: "opening parent directory",
            entry: entry.to_string(),
            source,
        },
    }
}

fn classify(dir: BorrowedFd<'_>, comp: &[u8], e: Errno, i: usize) -> WalkError {
    match e {
        Errno::LOOP | Errno::NOTDIR => {
            match rustix::fs::statat(dir, comp, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    WalkError::Symlink(i)
                }
                _ => WalkError::NotDir(i),
            }
        }
        Errno::NOENT => WalkError::Missing(i),
        other => WalkError::Io(errno(other)),
    }
}

/// Components of a normalized path (no empty, `.` or `..` parts).
pub(crate) fn split(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty())
}

/// Split a normalized path into its parent and final component.
pub(crate) fn parent_and_name(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// The file type of `name` in `dir`, without following it; `None` if absent.
pub(crate) fn lstat_type(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

/// Remove `name` from `dir`, recursively if it is a directory. Never
/// follows symlinks: a symlink is unlinked, not its target.
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<()> {
    match lstat_type(dir, name)? {
        None => Ok(()),
        Some(FileType::Directory) => {
            let fd = rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(errno)?;
            clear_dir(fd.as_fd(), |_| false)?;
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(errno)
        }
        Some(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(errno),
    }
}

/// Remove every child of `dir` for which `keep` is false.
pub(crate) fn clear_dir(
    dir: BorrowedFd<'_>,
    mut keep: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<()> {
    for name in list_dir(dir)? {
        if !keep(&name) {
            remove_all(dir, &name)?;
        }
    }
    Ok(())
}

/// Names in `dir` (without `.` and `..`), sorted bytewise so that walks are
/// deterministic.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> std::io::Result<Vec<Vec<u8>>> {
    let fd = rustix::fs::openat(dir, c".", DIR_FLAGS, Mode::empty()).map_err(errno)?;
    let mut d = rustix::fs::Dir::new(fd).map_err(errno)?;
    let mut names = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent.map_err(errno)?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// The `/proc/self/fd/N/NAME` path of `name` in `dir`, for the xattr calls
/// that have no `*at` form on this kernel. `dir` is already resolved
/// safely and `name` is one component, so the path cannot escape.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(OsStr::from_bytes(name));
    p
}

/// Set ownership, mode, xattrs and (unless `defer_times`) times on an open
/// file or directory, in the order that keeps setuid bits and file
/// capabilities: chown clears both, so it goes first.
pub(crate) fn set_meta_fd(
    fd: BorrowedFd<'_>,
    meta: &Meta,
    owner: bool,
    defer_times: bool,
) -> Result<(), (&'static str, std::io::Error)> {
    if owner {
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
        )
        .map_err(|e| ("setting owner", errno(e)))?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777))
        .map_err(|e| ("setting mode", errno(e)))?;
    for (k, v) in &meta.xattrs {
        set_xattr(
            rustix::fs::fsetxattr(fd, k.as_slice(), v, rustix::fs::XattrFlags::empty()),
            k,
        )?;
    }
    if !defer_times {
        rustix::fs::futimens(fd, &meta.timestamps()).map_err(|e| ("setting mtime", errno(e)))?;
    }
    Ok(())
}

/// Set metadata on a non-openable object (symlink, device, FIFO, whiteout).
pub(crate) fn set_meta_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
    owner: bool,
    chmod: bool,
) -> Result<(), (&'static str, std::io::Error)> {
    if owner {
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ("setting owner", errno(e)))?;
    }
    if chmod {
        // The final component was just created by us as a non-symlink, so
        // fchmodat's lack of AT_SYMLINK_NOFOLLOW cannot be exploited.
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(meta.mode & 0o7777),
            AtFlags::empty(),
        )
        .map_err(|e| ("setting mode", errno(e)))?;
    }
    if !meta.xattrs.is_empty() {
        let p = proc_path(dir, name);
        for (k, v) in &meta.xattrs {
            set_xattr(
                rustix::fs::lsetxattr(&p, k.as_slice(), v, rustix::fs::XattrFlags::empty()),
                k,
            )?;
        }
    }
    rustix::fs::utimensat(dir, name, &meta.timestamps(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| ("setting mtime", errno(e)))
}

fn set_xattr(r: rustix::io::Result<()>, key: &[u8]) -> Result<(), (&'static str, std::io::Error)> {
    match r {
        Ok(()) => Ok(()),
        // Some file systems (or symlinks, for user.*) cannot hold an xattr;
        // the file is still usable, so say so rather than fail the image.
        Err(Errno::OPNOTSUPP) | Err(Errno::PERM)
            if !key.starts_with(b"security.") && !key.starts_with(b"trusted.") =>
        {
            tracing::warn!(xattr = %String::from_utf8_lossy(key), "extended attribute not supported here; skipped");
            Ok(())
        }
        Err(e) => Err(("setting extended attribute", errno(e))),
    }
}
