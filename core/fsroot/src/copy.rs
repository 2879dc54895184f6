//! A directory of a [`Root`] copied into another directory by descriptors
//! alone (what `cp -a` did for volume seeding, without its host path walk).
//!
//! The source is found with `openat2(RESOLVE_IN_ROOT)`; below it, every
//! entry is opened relative to its parent's descriptor with `O_NOFOLLOW`,
//! one component at a time, and made in the destination with `*at` calls
//! on the destination's descriptors. A symlink is copied as a link and
//! never followed; a file swapped under the walk is either the tree's own
//! new file or skipped. Modes (set-id bits included), owners, times and
//! extended attributes (file capabilities included; not `trusted.*`,
//! overlayfs' own) are kept.
//! Device nodes, FIFOs and sockets are skipped: a copy must not open them,
//! and a volume has no use for a device the image names. Hard links become
//! separate files: linking by path in a destination a container may
//! already be writing to would follow its links. Depth is bounded, since
//! each level holds two descriptors and a stack frame.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::{FsRootError, Root};

/// Directories nested deeper than this below the copied one are refused.
pub const MAX_COPY_DEPTH: usize = 128;

/// What [`Root::copy_dir_to`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Directories, files and links made.
    pub entries: u64,
    /// Device nodes, FIFOs and sockets left out, and entries the
    /// destination already had.
    pub skipped: u64,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Root {
    /// Copy the contents of the directory at `path` (resolved inside the
    /// root; a final symlink is followed inside it) into the directory
    /// `dst`, and give `dst` its mode, owner and times. `None` when `path`
    /// does not exist or is not a directory: nothing to copy.
    pub fn copy_dir_to(
        &self,
        path: impl AsRef<Path>,
        dst: BorrowedFd<'_>,
    ) -> Result<Option<Copied>, FsRootError> {
        let path = path.as_ref();
        let rel = crate::join(&crate::components(path));
        let src = match self.resolve(&rel, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(self.error("copying", path, e)),
        };
        let mut copy = Copy {
            root: self,
            copied: Copied::default(),
        };
        let shown = PathBuf::from("/").join(Path::new(std::ffi::OsStr::from_bytes(&rel)));
        // Taken before the walk, which reads the directory and so changes its atime.
        let st = rustix::fs::fstat(&src).map_err(|e| self.error("copying", &shown, e))?;
        copy.dir(&src, dst, &shown, 0)?;
        copy.meta(&src, &st, dst, &shown)?;
        Ok(Some(copy.copied))
    }
}

struct Copy<'a> {
    root: &'a Root,
    copied: Copied,
}

impl Copy<'_> {
    fn dir(
        &mut self,
        src: &OwnedFd,
        dst: BorrowedFd<'_>,
        path: &Path,
        depth: usize,
    ) -> Result<(), FsRootError> {
        if depth > MAX_COPY_DEPTH {
            return Err(FsRootError::TooDeep {
                path: crate::shown(path),
                root: self.root.path.clone(),
                max: MAX_COPY_DEPTH,
            });
        }
        let err = |e: Errno| self.root.error("listing", path, e);
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(src).map_err(err)? {
            let entry = entry.map_err(err)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        for name in names {
            let child = path.join(std::ffi::OsStr::from_bytes(&name));
            self.entry(src, dst, &name, &child, depth)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src: &OwnedFd,
        dst: BorrowedFd<'_>,
        name: &[u8],
        path: &Path,
        depth: usize,
    ) -> Result<(), FsRootError> {
        let err = |e: Errno| self.root.error("copying", path, e);
        let st = match rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Gone since the listing.
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(err(e)),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let from = match rustix::fs::openat(src, name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => fd,
                    // Replaced by a link or a file since the stat, or gone.
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => return Ok(()),
                    Err(e) => return Err(err(e)),
                };
                match rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => return self.skip(path, "the destination has it"),
                    Err(e) => return Err(err(e)),
                }
                let to = rustix::fs::openat(dst, name, DIR_FLAGS, Mode::empty()).map_err(err)?;
                let st = rustix::fs::fstat(&from).map_err(err)?;
                self.dir(&from, to.as_fd(), path, depth + 1)?;
                // After the contents, which change its times.
                self.meta(&from, &st, to.as_fd(), path)?;
            }
            FileType::RegularFile => {
                // Looked at, not opened, until it is known to be a regular
                // file: it may have been swapped for a FIFO or a device.
                let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                #[cfg(test)]
                crate::tests::between_lookup_and_open();
                let probe = match rustix::fs::openat(src, name, flags, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(err(e)),
                };
                let Some((from, st)) = crate::open_regular(probe.as_fd()).map_err(err)? else {
                    return self.skip(path, "not a regular file");
                };
                let create = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let to = match rustix::fs::openat(dst, name, create, Mode::from_raw_mode(0o600)) {
                    Ok(fd) => fd,
                    Err(Errno::EXIST) => return self.skip(path, "the destination has it"),
                    Err(e) => return Err(err(e)),
                };
                let (mut r, mut w) = (std::fs::File::from(from), std::fs::File::from(to));
                std::io::copy(&mut r, &mut w)
                    .map_err(|e| self.root.io_error("copying", path, e))?;
                self.meta(&r.into(), &st, w.as_fd(), path)?;
            }
            FileType::Symlink => {
                let target = match rustix::fs::readlinkat(src, name, Vec::new()) {
                    Ok(t) => t,
                    Err(Errno::NOENT) | Err(Errno::INVAL) => return Ok(()),
                    Err(e) => return Err(err(e)),
                };
                match rustix::fs::symlinkat(target.as_c_str(), dst, name) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => return self.skip(path, "the destination has it"),
                    Err(e) => return Err(err(e)),
                }
                let nofollow = AtFlags::SYMLINK_NOFOLLOW;
                rustix::fs::chownat(dst, name, owner(&st), group(&st), nofollow).map_err(err)?;
                rustix::fs::utimensat(dst, name, &times(&st), nofollow).map_err(err)?;
            }
            _ => return self.skip(path, "a device node, FIFO or socket"),
        }
        self.copied.entries += 1;
        Ok(())
    }

    fn skip(&mut self, path: &Path, why: &str) -> Result<(), FsRootError> {
        tracing::debug!(path = %path.display(), why, "not copied");
        self.copied.skipped += 1;
        Ok(())
    }

    /// Owner, mode and times (`st`, taken before `from` was read) and the
    /// extended attributes of `from` onto `to`. The owner goes first: a
    /// change of owner clears the set-id bits and drops a file capability
    /// (`security.capability`), so both are set after it; the mode after
    /// the attributes, so that an ACL among them cannot leave it changed.
    fn meta(
        &self,
        from: &OwnedFd,
        st: &Stat,
        to: BorrowedFd<'_>,
        path: &Path,
    ) -> Result<(), FsRootError> {
        let err = |e: Errno| self.root.error("copying", path, e);
        rustix::fs::fchown(to, owner(st), group(st)).map_err(err)?;
        xattrs(from, to, path);
        rustix::fs::fchmod(to, Mode::from_raw_mode(st.st_mode & 0o7777)).map_err(err)?;
        rustix::fs::futimens(to, &times(st)).map_err(err)
    }
}

/// The extended attributes of `from` onto `to`, but for `trusted.*`
/// (overlayfs' bookkeeping and other privileged state). One that cannot
/// be read or set is left out: the data is what a volume needs.
fn xattrs(from: &OwnedFd, to: BorrowedFd<'_>, path: &Path) {
    let mut list = vec![0u8; 64 * 1024];
    let n = match rustix::fs::flistxattr(from, &mut list[..]) {
        Ok(n) => n,
        Err(_) => return,
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.") {
            continue;
        }
        let set = rustix::fs::fgetxattr(from, name, &mut value[..]).and_then(|len| {
            rustix::fs::fsetxattr(to, name, &value[..len], rustix::fs::XattrFlags::empty())
        });
        if let Err(e) = set {
            tracing::debug!(path = %path.display(), xattr = %String::from_utf8_lossy(name), error = %e, "extended attribute not copied");
        }
    }
}

fn owner(st: &Stat) -> Option<Uid> {
    Some(Uid::from_raw(st.st_uid))
}

fn group(st: &Stat) -> Option<Gid> {
    Some(Gid::from_raw(st.st_gid))
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}
