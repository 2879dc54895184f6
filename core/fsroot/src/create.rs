//! Directories and empty files made inside a [`Root`].
//!
//! Every lookup is an `openat2(RESOLVE_IN_ROOT)` of the whole path from
//! the root: the kernel follows the image's links inside it and gives up
//! with `ELOOP` after 40. When the path does not resolve, the deepest
//! prefix that does is opened the same way and the next component is made
//! there with `mkdirat` on that descriptor; then the whole path is looked
//! up again. A component that exists but does not resolve is a dangling
//! symlink: its target, read with `readlinkat`, replaces it in the path
//! (as the kernel would follow it), so what the link names is made, still
//! inside the root. Those rewrites count against the same limit of 40.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::{Root, join, split};

/// The most links one creation follows by rewriting its path.
const MAX_LINKS: usize = 40;

/// The most lookups one creation makes before it gives up (a path that
/// keeps changing under it).
const MAX_STEPS: usize = 4096;

const DIR: OFlags = OFlags::PATH.union(OFlags::DIRECTORY);

impl Root {
    /// Make the directory `path` and any missing parents inside the root
    /// (with `mode`, less the umask), as `mkdir -p` would if the root were
    /// `/`; returns an `O_PATH` descriptor of it. An existing directory is
    /// fine; an existing file on the way is `ENOTDIR`.
    pub fn mkdir_all(
        &self,
        path: impl AsRef<Path>,
        mode: u32,
    ) -> Result<OwnedFd, crate::FsRootError> {
        let path = path.as_ref();
        self.mkdir_parts(crate::components(path), Mode::from_raw_mode(mode))
            .map_err(|e| self.error("creating directory", path, e))
    }

    /// Make an empty file at `path` (and its missing parent directories)
    /// inside the root, unless something is there already.
    pub fn create_file(&self, path: impl AsRef<Path>, mode: u32) -> Result<(), crate::FsRootError> {
        let path = path.as_ref();
        self.create_parts(crate::components(path), Mode::from_raw_mode(mode))
            .map_err(|e| self.error("creating file", path, e))
    }

    fn mkdir_parts(&self, mut parts: Vec<Vec<u8>>, mode: Mode) -> rustix::io::Result<OwnedFd> {
        let mut links = 0;
        for _ in 0..MAX_STEPS {
            match self.resolve(&join(&parts), DIR) {
                Err(Errno::NOENT) => {}
                other => return other,
            }
            let (parent, n) = self.deepest(&parts)?;
            let name = &parts[n];
            match rustix::fs::mkdirat(&parent, name.as_slice(), mode) {
                // The mode asked for, not what berthd's umask (0077) leaves
                // of it: a container's users must traverse what is made here.
                // Opened without following, so a symlink swapped in for the
                // new directory is refused, never chmodded through.
                Ok(()) => {
                    let made = rustix::fs::openat(
                        &parent,
                        name.as_slice(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    rustix::fs::fchmod(&made, mode)?;
                }
                Err(Errno::EXIST) => {
                    parts = follow(&parent, &parts, n, &mut links)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Errno::LOOP)
    }

    fn create_parts(&self, mut parts: Vec<Vec<u8>>, mode: Mode) -> rustix::io::Result<()> {
        let mut links = 0;
        for _ in 0..MAX_STEPS {
            match self.resolve(&join(&parts), OFlags::PATH) {
                Ok(_) => return Ok(()),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
            let n = parts.len().checked_sub(1).ok_or(Errno::ISDIR)?;
            if parts[n] == b".." {
                return Err(Errno::ISDIR);
            }
            let parent = self.mkdir_parts(parts[..n].to_vec(), Mode::from_raw_mode(0o755))?;
            let flags =
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(&parent, parts[n].as_slice(), flags, mode) {
                // As for directories: the mode asked for, whatever the umask.
                Ok(made) => return rustix::fs::fchmod(&made, mode),
                Err(Errno::EXIST) => {
                    parts = follow(&parent, &parts, n, &mut links)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Errno::LOOP)
    }

    /// The deepest prefix `parts[..n]` that resolves to a directory, and
    /// `n`; `parts[n]` is then the first component that does not resolve.
    fn deepest(&self, parts: &[Vec<u8>]) -> rustix::io::Result<(OwnedFd, usize)> {
        let mut n = parts.len().checked_sub(1).ok_or(Errno::NOENT)?;
        loop {
            match self.resolve(&join(&parts[..n]), DIR) {
                Ok(fd) => break Ok((fd, n)),
                Err(Errno::NOENT) if n > 0 => n -= 1,
                Err(e) => break Err(e),
            }
        }
    }
}

/// `parts` with `parts[n]`, an entry of `parent` that exists but does not
/// resolve, replaced by its link target; unchanged if it is not a link
/// (made by someone else meanwhile: the next lookup finds it).
fn follow(
    parent: &OwnedFd,
    parts: &[Vec<u8>],
    n: usize,
    links: &mut usize,
) -> rustix::io::Result<Vec<Vec<u8>>> {
    let target = match rustix::fs::readlinkat(parent, parts[n].as_slice(), Vec::new()) {
        Ok(t) => t.into_bytes(),
        Err(Errno::INVAL) => return Ok(parts.to_vec()),
        Err(e) => return Err(e),
    };
    *links += 1;
    if *links > MAX_LINKS {
        return Err(Errno::LOOP);
    }
    let mut out = if target.starts_with(b"/") {
        Vec::new()
    } else {
        parts[..n].to_vec()
    };
    out.extend(split(&target));
    out.extend(parts[n + 1..].iter().cloned());
    Ok(out)
}
