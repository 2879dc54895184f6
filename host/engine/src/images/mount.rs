//! Mounting an image's root file system read-only on the host (for
//! inspection and tests), and unmounting it.
//!
//! An image mounted on the host is `nosuid,nodev` (as every snapshot
//! mount), and only on an empty directory root owns: mounting over a
//! directory with files would hide them from the host, and one another
//! user owns could be swapped for a link to `/etc` between the check and
//! the mount. The target is opened once, checked through that descriptor
//! and mounted on through it, so the directory checked is the one mounted.

use std::path::Path;

use berth_snapshot::Labels;

use super::Images;
use crate::EngineError;

/// The view key of a mount target: one view per target directory.
fn mount_key(target: &std::path::Path) -> String {
    let d = berth_oci::Digest::sha256_of(target.to_string_lossy().as_bytes());
    format!("mount-{}", &d.hex()[..24])
}

impl Images {
    /// Mount the image `reference` read-only on `target`, an existing
    /// empty directory root owns, in a parent only root can write to.
    pub async fn mount(&self, reference: &str, target: &Path) -> Result<(), EngineError> {
        let img = self.get(reference)?;
        let chain = img.chain_id.ok_or_else(|| {
            EngineError::invalid(format!("image {} has no layers to mount", img.reference))
        })?;
        if !target.is_absolute() {
            return Err(EngineError::invalid(format!(
                "mount target {} must be given as an absolute path",
                target.display()
            )));
        }
        let key = mount_key(target);
        let snapshots = self.unpacker.snapshots().clone();
        let target = target.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let pinned = open_mount_target(&target)?;
            let mounts = snapshots
                .view(&key, Some(&chain.to_string()), Labels::new())
                .map_err(|e| EngineError::Conflict {
                    code: "mount_failed",
                    message: format!("mounting on {}: {e}", target.display()),
                })?;
            if let Err(e) = berth_snapshot::mount_all(&mounts, &pinned.through) {
                let _ = snapshots.remove(&key);
                return Err(EngineError::internal(format!(
                    "mounting at {}: {e}",
                    target.display()
                )));
            }
            Ok(())
        })
        .await
        .map_err(|e| EngineError::internal(format!("the mount task: {e}")))?
    }

    /// Unmount the image mounted on `target`.
    pub async fn unmount(&self, target: &Path) -> Result<(), EngineError> {
        let key = mount_key(target);
        let snapshots = self.unpacker.snapshots().clone();
        let target = target.to_path_buf();
        tokio::task::spawn_blocking(move || {
            snapshots.stat(&key).map_err(|_| {
                EngineError::not_found(format!("no image is mounted at {}", target.display()))
            })?;
            berth_snapshot::unmount(&target).map_err(|e| {
                EngineError::internal(format!("unmounting {}: {e}", target.display()))
            })?;
            snapshots.remove(&key).map_err(|e| {
                EngineError::internal(format!("removing the view of {}: {e}", target.display()))
            })
        })
        .await
        .map_err(|e| EngineError::internal(format!("the unmount task: {e}")))?
    }
}

/// The mount target, pinned: its parent directory held open, so that a
/// mount on `/proc/self/fd/PARENT/NAME` reaches exactly the directory
/// checked here (and the stacked mount on it, for a bind's remount). The
/// parent must be root's and writable by no one else (or sticky, as /tmp),
/// so that nobody can swap NAME meanwhile; NAME must be an existing empty
/// directory root owns, not a link to one.
struct MountTarget {
    _parent: std::os::fd::OwnedFd,
    through: std::path::PathBuf,
}

fn open_mount_target(target: &Path) -> Result<MountTarget, EngineError> {
    use rustix::fs::{Mode, OFlags};
    let bad = |why: String| {
        EngineError::invalid(format!(
            "cannot mount an image on {}: {why}",
            target.display()
        ))
    };
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(bad(
            "give a directory below /, by a path without `..`".into()
        ));
    };
    let parent_fd = rustix::fs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| bad(format!("opening its parent directory: {e}")))?;
    let st = rustix::fs::fstat(&parent_fd).map_err(|e| bad(e.to_string()))?;
    let sticky = st.st_mode & 0o1000 != 0;
    if st.st_uid != 0 || (st.st_mode & 0o022 != 0 && !sticky) {
        return Err(bad(format!(
            "its parent {} is writable by others than root (uid {}, mode {:o}), who could \
             swap the directory for a link; use a directory in a root-only parent",
            parent.display(),
            st.st_uid,
            st.st_mode & 0o7777
        )));
    }
    let fd = rustix::fs::openat(
        &parent_fd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        bad(format!(
            "{e}; give an existing empty directory (not a symbolic link)"
        ))
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| bad(e.to_string()))?;
    if st.st_uid != 0 {
        return Err(bad(format!(
            "it is owned by uid {}, and berth mounts images only on directories root owns; \
             create an empty one as root",
            st.st_uid
        )));
    }
    let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| bad(e.to_string()))?;
    for entry in dir {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let entry_name = entry.file_name().to_bytes();
        if entry_name != b"." && entry_name != b".." {
            return Err(bad(
                "it is not empty, and the image would hide what it holds; give an empty directory"
                    .into(),
            ));
        }
    }
    let through = std::path::PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&parent_fd)
    ))
    .join(name);
    Ok(MountTarget {
        _parent: parent_fd,
        through,
    })
}
