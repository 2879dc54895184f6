//! Named volumes: directories under `ROOT/volumes/NAME/_data` that outlive
//! containers, as Docker's local driver keeps them. A volume mounted for
//! the first time while empty is seeded with what the image has at that
//! path, as Docker does.

use std::os::fd::AsFd;
use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rustix::fs::{Mode, OFlags};

use super::containers::ContainerRecord;
use super::{ControlApp, ControlError, Shared};

pub use berth_api_types::Volume;

fn tree(app: &ControlApp) -> Result<berth_state::JsonTree, ControlError> {
    Ok(app.registry.state().json_tree("volumes")?)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// The volume `name`, created if it does not exist. Returns it and whether
/// it was created now. `anonymous_for` names the container an anonymous
/// volume is made for (`None` for a named volume).
pub(crate) fn ensure(
    app: &ControlApp,
    name: &str,
    anonymous_for: Option<&str>,
) -> Result<(Volume, bool), ControlError> {
    if !valid_name(name) {
        return Err(ControlError::bad_request(format!(
            "volume name {name:?} is invalid: use [a-zA-Z0-9][a-zA-Z0-9_.-]*"
        )));
    }
    let t = tree(app)?;
    if let Some(v) = t.get::<Volume>(name)? {
        return Ok((v, false));
    }
    let dir = app.root.join("volumes").join(name);
    let mountpoint = dir.join("_data");
    // The volume's own directory is berthd's alone; `_data` is what the
    // container sees (bound onto its target, so no parent is traversed
    // from inside) and is made 0755 for the container's users (explicitly:
    // berthd's umask is 0077).
    berth_runtime::shim_files::create_private_dir(&dir)
        .and_then(|()| std::fs::create_dir(&mountpoint))
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&mountpoint, std::fs::Permissions::from_mode(0o755))
        })
        .map_err(|e| ControlError::internal(format!("creating {}: {e}", mountpoint.display())))?;
    let v = Volume {
        name: name.to_string(),
        mountpoint,
        created: berth_state::now(),
        anonymous: anonymous_for.is_some(),
        container: anonymous_for.map(str::to_string),
    };
    t.put(name, &v)?;
    Ok((v, true))
}

/// A fresh name for an anonymous volume (64 hex digits, as Docker's).
pub(crate) fn anonymous_name() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Copy what the image has at `path` into an empty, new volume, keeping
/// modes, owners, times, links and extended attributes. The path is
/// resolved inside the mounted `rootfs` (the image's links and `..` never
/// lead out of it) and copied by descriptors ([`berth_fsroot`]); nothing
/// there, or not a directory, copies nothing. Device nodes and FIFOs are
/// left out. Blocking: call it off the async workers.
pub(crate) fn seed(rootfs: &Path, path: &str, volume: &Volume) -> Result<(), ControlError> {
    let failed = |e: berth_fsroot::FsRootError| {
        let message = format!("seeding volume {}: {e}", volume.name);
        // A link loop or a tree too deep is the image's doing.
        let image = matches!(e, berth_fsroot::FsRootError::TooDeep { .. })
            || e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error());
        if image {
            ControlError::bad_request(message)
        } else {
            ControlError::internal(message)
        }
    };
    let root = berth_fsroot::Root::open(rootfs).map_err(failed)?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dst = rustix::fs::open(&volume.mountpoint, flags, Mode::empty()).map_err(|e| {
        ControlError::internal(format!(
            "opening volume {} at {}: {e}",
            volume.name,
            volume.mountpoint.display()
        ))
    })?;
    if let Some(copied) = root.copy_dir_to(path, dst.as_fd()).map_err(failed)? {
        tracing::debug!(volume = %volume.name, path, entries = copied.entries, "volume seeded from the image");
        if copied.skipped > 0 {
            tracing::info!(volume = %volume.name, path, skipped = copied.skipped, "device nodes, FIFOs or sockets of the image were not copied into the volume");
        }
    }
    Ok(())
}

/// Remove the anonymous volumes made for container `id`, whose create
/// never recorded it. Blocking: call it off the async workers. Returns
/// whether all of them are gone.
pub(crate) fn remove_made_for(app: &ControlApp, id: &str) -> bool {
    let all: Vec<(String, Volume)> = match tree(app).and_then(|t| Ok(t.list()?)) {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "listing the volumes of an unfinished create");
            return false;
        }
    };
    let mut gone = true;
    for (name, v) in all {
        if v.anonymous && v.container.as_deref() == Some(id) {
            match remove_volume(app, &name) {
                Ok(()) => {
                    tracing::warn!(volume = %name, container = %id, "removed an anonymous volume of an unfinished create")
                }
                Err(e) => {
                    tracing::warn!(volume = %name, error = %e, "removing an anonymous volume of an unfinished create");
                    gone = false;
                }
            }
        }
    }
    gone
}

fn users(app: &ControlApp, name: &str) -> Result<Vec<String>, ControlError> {
    let all: Vec<(String, ContainerRecord)> =
        app.registry.state().json_tree("containers")?.list()?;
    Ok(all
        .into_iter()
        .filter(|(_, r)| r.volumes.iter().any(|v| v == name))
        .map(|(_, r)| r.name)
        .collect())
}

/// Remove a volume and its data, unless a container uses it.
pub(crate) fn remove_volume(app: &ControlApp, name: &str) -> Result<(), ControlError> {
    let in_use = users(app, name)?;
    if !in_use.is_empty() {
        return Err(ControlError::new(
            StatusCode::CONFLICT,
            "volume_in_use",
            format!(
                "volume {name} is in use by {}; remove those containers first",
                in_use.join(", ")
            ),
        ));
    }
    let t = tree(app)?;
    let v: Volume = t
        .get(name)?
        .ok_or_else(|| ControlError::not_found(format!("no volume {name:?}")))?;
    if let Some(dir) = v.mountpoint.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    t.remove(name)?;
    Ok(())
}

pub use berth_api_types::CreateVolume;

pub(crate) async fn create(
    State(app): Shared,
    axum::Json(req): axum::Json<CreateVolume>,
) -> Result<impl IntoResponse, ControlError> {
    let name = req.name.unwrap_or_else(anonymous_name);
    let (v, _) = ensure(&app, &name, None)?;
    Ok((StatusCode::CREATED, axum::Json(v)))
}

pub(crate) async fn list(State(app): Shared) -> Result<impl IntoResponse, ControlError> {
    let all: Vec<(String, Volume)> = tree(&app)?.list()?;
    Ok(axum::Json(
        all.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    ))
}

pub(crate) async fn inspect(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    let v: Volume = tree(&app)?
        .get(&name)?
        .ok_or_else(|| ControlError::not_found(format!("no volume {name:?}")))?;
    let used_by = users(&app, &name)?;
    Ok(axum::Json(berth_api_types::VolumeInspect {
        volume: v,
        used_by,
    }))
}

pub(crate) async fn remove(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ControlError> {
    remove_volume(&app, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn prune(State(app): Shared) -> Result<impl IntoResponse, ControlError> {
    let all: Vec<(String, Volume)> = tree(&app)?.list()?;
    let mut removed = Vec::new();
    for (name, _) in all {
        if users(&app, &name)?.is_empty() && remove_volume(&app, &name).is_ok() {
            removed.push(name);
        }
    }
    Ok(axum::Json(berth_api_types::VolumePruneResponse { removed }))
}
