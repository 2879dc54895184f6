//! Whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`): how a
//! layer hides what its lower layers hold.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{Applier, WhiteoutMode, set_at};
use crate::LayerError;
use crate::error::errno;
use crate::root::{self, Meta};

impl Applier<'_> {
    /// `.wh.NAME`: hide NAME of the lower layers.
    pub(super) fn whiteout(
        &mut self,
        name: &str,
        dir: &[u8],
        hidden: &[u8],
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let mut hidden_path = dir.to_vec();
        if !hidden_path.is_empty() {
            hidden_path.push(b'/');
        }
        hidden_path.extend_from_slice(hidden);
        if self.created.contains(&hidden_path) {
            tracing::debug!(entry = %name, "whiteout of a file from the same layer ignored");
            return Ok(());
        }
        self.whiteouts += 1;
        let overlay = self.opts.whiteouts == WhiteoutMode::Overlay;
        let owned;
        let parent = if overlay {
            self.root.parent(name, dir)?
        } else {
            match self.root.walk(dir, false) {
                Ok(fd) => {
                    owned = fd;
                    owned.as_fd()
                }
                // Nothing below to hide.
                Err(root::WalkError::Missing(_)) => return Ok(()),
                Err(e) => return Err(root::walk_error(name, dir, e)),
            }
        };
        root::remove_all(parent, hidden)
            .map_err(LayerError::entry("removing whited-out file", name))?;
        if overlay {
            rustix::fs::mknodat(
                parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(|e| LayerError::entry("creating whiteout device", name)(errno(e)))?;
            let meta = Meta {
                xattrs: Vec::new(),
                ..meta.clone()
            };
            set_at(
                parent,
                hidden,
                &meta,
                self.opts.preserve_ownership,
                true,
                name,
            )?;
        }
        Ok(())
    }

    /// `DIR/.wh..wh..opq`: DIR hides everything the lower layers hold in it.
    pub(super) fn opaque(&mut self, name: &str, dir: &[u8]) -> Result<(), LayerError> {
        self.whiteouts += 1;
        let overlay = self.opts.whiteouts == WhiteoutMode::Overlay;
        let fd = match self.root.walk(dir, overlay) {
            Ok(fd) => fd,
            Err(root::WalkError::Missing(_)) => return Ok(()),
            Err(e) => return Err(root::walk_error(name, dir, e)),
        };
        let mut prefix = dir.to_vec();
        self.prune(fd.as_fd(), &mut prefix)
            .map_err(LayerError::entry("clearing opaque directory", name))?;
        if overlay {
            rustix::fs::fsetxattr(
                fd.as_fd(),
                "trusted.overlay.opaque",
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|e| {
                LayerError::entry("marking directory opaque (trusted.overlay.opaque)", name)(errno(
                    e,
                ))
            })?;
        }
        Ok(())
    }

    /// Remove what this layer did not create below `dir`, keeping the
    /// directories that lead to what it did. Returns whether anything stayed.
    fn prune(&self, dir: BorrowedFd<'_>, prefix: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut kept = false;
        for child in root::list_dir(dir)? {
            let len = prefix.len();
            if len > 0 {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(&child);
            let created = self.created.contains(prefix);
            if root::lstat_type(dir, &child)? == Some(FileType::Directory) {
                let fd = rustix::fs::openat(
                    dir,
                    child.as_slice(),
                    OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?;
                let inner = self.prune(fd.as_fd(), prefix)?;
                if created || inner {
                    kept = true;
                } else {
                    rustix::fs::unlinkat(dir, child.as_slice(), AtFlags::REMOVEDIR)
                        .map_err(errno)?;
                }
            } else if created {
                kept = true;
            } else {
                rustix::fs::unlinkat(dir, child.as_slice(), AtFlags::empty()).map_err(errno)?;
            }
            prefix.truncate(len);
        }
        Ok(kept)
    }
}
