//! Named volumes: directories under `ROOT/volumes/NAME/_data` that outlive
//! containers, as Docker's local driver keeps them. A volume mounted for
//! the first time while empty is seeded with what the image has at that
//! path, as Docker does.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::containers::ContainerRecord;
use super::{ControlApp, ControlError, Shared};

/// A volume's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub mountpoint: PathBuf,
    pub created: u64,
    /// Made for an image's `VOLUME` path; removed with its container.
    #[serde(default)]
    pub anonymous: bool,
}

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
/// it was created now.
pub(crate) fn ensure(
    app: &ControlApp,
    name: &str,
    anonymous: bool,
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
    let mountpoint = app.root.join("volumes").join(name).join("_data");
    std::fs::create_dir_all(&mountpoint)
        .map_err(|e| ControlError::internal(format!("creating {}: {e}", mountpoint.display())))?;
    let v = Volume {
        name: name.to_string(),
        mountpoint,
        created: berth_state::now(),
        anonymous,
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

/// Copy what the image has at `path` (inside the mounted `rootfs`) into an
/// empty, new volume, keeping modes, owners and links (`cp -a`).
pub(crate) fn seed(rootfs: &Path, path: &str, volume: &Volume) -> Result<(), ControlError> {
    let src = rootfs.join(path.trim_start_matches('/'));
    // Never follow a symlink out of the image: only a real directory seeds.
    match std::fs::symlink_metadata(&src) {
        Ok(m) if m.is_dir() => {}
        _ => return Ok(()),
    }
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg("--no-target-directory")
        .arg(&src)
        .arg(&volume.mountpoint)
        .status()
        .map_err(|e| ControlError::internal(format!("seeding volume {}: {e}", volume.name)))?;
    if !status.success() {
        return Err(ControlError::internal(format!(
            "seeding volume {} from the image's {path} failed",
            volume.name
        )));
    }
    Ok(())
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

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CreateVolume {
    pub name: Option<String>,
}

pub(crate) async fn create(
    State(app): Shared,
    axum::Json(req): axum::Json<CreateVolume>,
) -> Result<impl IntoResponse, ControlError> {
    let name = req.name.unwrap_or_else(anonymous_name);
    let (v, _) = ensure(&app, &name, false)?;
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
    Ok(axum::Json(
        serde_json::json!({ "volume": v, "used_by": used_by }),
    ))
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
    Ok(axum::Json(serde_json::json!({ "removed": removed })))
}
