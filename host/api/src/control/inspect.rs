//! `/v1/images/inspect`, `/v1/images/history`, and mounting an image's
//! root file system read-only (for inspection and tests).
//!
//! An image mounted on the host is `nosuid,nodev` (as every snapshot
//! mount), and only on an empty directory root owns: mounting over a
//! directory with files would hide them from the host, and one another
//! user owns could be swapped for a link to `/etc` between the check and
//! the mount. The target is opened once, checked through that descriptor
//! and mounted on through it, so the directory checked is the one mounted.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_oci::Reference;
use berth_snapshot::Labels;
use berth_state::ImageRecord;

use super::store::read_config;
use super::{ControlApp, ControlError, Shared};

pub use berth_api_types::{MountRequest, RefQuery, UnmountRequest};

pub(crate) fn image(app: &ControlApp, reference: &str) -> Result<ImageRecord, ControlError> {
    let r: Reference = reference
        .parse()
        .map_err(|e: berth_oci::ReferenceError| ControlError::bad_request(e.to_string()))?;
    app.registry
        .state()
        .get_image(&r.to_string())?
        .ok_or_else(|| {
            ControlError::not_found(format!("no local image {r}; pull, load or import it first"))
        })
}

pub(crate) async fn inspect(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let img = image(&app, &q.reference)?;
    let config = read_config(&app, &img.config).await?;
    Ok(axum::Json(berth_api_types::ImageInspect {
        reference: img.reference,
        manifest: img.manifest.to_string(),
        media_type: img.media_type,
        config_digest: img.config.to_string(),
        chain_id: img.chain_id.map(|c| c.to_string()),
        size: img.size,
        created: img.created,
        origin: img.origin,
        config: serde_json::to_value(config).map_err(ControlError::internal)?,
    }))
}

pub(crate) async fn history(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let img = image(&app, &q.reference)?;
    let config = read_config(&app, &img.config).await?;
    Ok(axum::Json(config.history))
}

/// The view key of a mount target: one view per target directory.
fn mount_key(target: &std::path::Path) -> String {
    let d = berth_oci::Digest::sha256_of(target.to_string_lossy().as_bytes());
    format!("mount-{}", &d.hex()[..24])
}

pub(crate) async fn mount(
    State(app): Shared,
    axum::Json(req): axum::Json<MountRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let img = image(&app, &req.reference)?;
    let chain = img.chain_id.ok_or_else(|| {
        ControlError::bad_request(format!("image {} has no layers to mount", img.reference))
    })?;
    if !req.target.is_absolute() {
        return Err(ControlError::bad_request(format!(
            "mount target {} must be given as an absolute path",
            req.target.display()
        )));
    }
    let key = mount_key(&req.target);
    let snapshots = app.unpacker.snapshots().clone();
    let target = req.target.clone();
    tokio::task::spawn_blocking(move || {
        let pinned = open_mount_target(&target)?;
        let mounts = snapshots
            .view(&key, Some(&chain.to_string()), Labels::new())
            .map_err(|e| ControlError::new(StatusCode::CONFLICT, "mount_failed", e.to_string()))?;
        if let Err(e) = berth_snapshot::mount_all(&mounts, &pinned.through) {
            let _ = snapshots.remove(&key);
            return Err(ControlError::internal(format!(
                "mounting at {}: {e}",
                target.display()
            )));
        }
        Ok(())
    })
    .await
    .map_err(ControlError::internal)??;
    Ok(StatusCode::NO_CONTENT)
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

fn open_mount_target(target: &std::path::Path) -> Result<MountTarget, ControlError> {
    use rustix::fs::{Mode, OFlags};
    let bad = |why: String| {
        ControlError::bad_request(format!(
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

pub(crate) async fn unmount(
    State(app): Shared,
    axum::Json(req): axum::Json<UnmountRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let key = mount_key(&req.target);
    let snapshots = app.unpacker.snapshots().clone();
    tokio::task::spawn_blocking(move || {
        snapshots.stat(&key).map_err(|_| {
            ControlError::not_found(format!("no image is mounted at {}", req.target.display()))
        })?;
        berth_snapshot::unmount(&req.target).map_err(|e| {
            ControlError::internal(format!("unmounting {}: {e}", req.target.display()))
        })?;
        snapshots.remove(&key).map_err(ControlError::internal)
    })
    .await
    .map_err(ControlError::internal)??;
    Ok(StatusCode::NO_CONTENT)
}
