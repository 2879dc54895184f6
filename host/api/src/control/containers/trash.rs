//! Removal of a container's files off the answer's path. `rm` and
//! `run --rm` move the container's directory from `ROOT/containers/ID` to
//! `ROOT/trash/ID` in one rename (its root file system already unmounted),
//! remove the container's snapshot (key `ID`) and answer; the directory's
//! files are deleted by a task afterwards. On a disk, deleting them took
//! milliseconds of journal work for every run. The snapshot goes before the
//! answer: it is a child of the image's, and `rm` then `rmi` (or `run --rm`
//! then `image prune`) must find the image free.
//!
//! `trash/ID` is the mark of a removal under way: a daemon killed before
//! the task ended leaves it, and the next start finishes it ([`empty_all`]).

use std::path::{Path, PathBuf};

use berth_snapshot::{SnapshotError, Snapshotter};

use super::record::ContainerRecord;
use crate::control::ControlApp;

fn trash_dir(root: &Path) -> PathBuf {
    root.join("trash")
}

/// Move the container's directory into the trash; `None` when it is not
/// there (or could not be moved: then it was deleted in place, with the
/// snapshot, as before the trash).
pub(crate) async fn put(app: &ControlApp, record: &ContainerRecord) -> Option<PathBuf> {
    let trash = trash_dir(&app.root);
    let to = trash.join(&record.id);
    let from = record.dir.clone();
    let snapshots = app.unpacker.snapshots().clone();
    let id = record.id.clone();
    let moved = tokio::task::spawn_blocking(move || {
        let renamed = berth_runtime::shim_files::create_private_dir(&trash)
            .and_then(|()| std::fs::rename(&from, &to));
        match renamed {
            Ok(()) => {
                // Deleting through a mount would empty what it shows: a
                // root still mounted keeps its snapshot for the task (and,
                // failing that, the next start).
                if !berth_snapshot::is_mounted(&to.join("rootfs")) {
                    remove_snapshot(&*snapshots, &id);
                }
                Some(to)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !from.exists() => {
                remove_snapshot(&*snapshots, &id);
                None
            }
            Err(e) => {
                tracing::warn!(path = %from.display(), error = %e, "moving a container directory to the trash; deleting it in place");
                empty(&*snapshots, &id, &from);
                None
            }
        }
    })
    .await;
    moved.ok().flatten()
}

/// Delete a trashed directory (and its container's snapshot, if `put`
/// had to leave it), in a task.
pub(crate) fn empty_later(app: &ControlApp, trashed: PathBuf) {
    let snapshots = app.unpacker.snapshots().clone();
    tokio::task::spawn_blocking(move || {
        if let Some(id) = trashed.file_name().and_then(|n| n.to_str()) {
            empty(&*snapshots, id, &trashed);
        }
    });
}

/// At start-up: finish every removal a previous daemon left under way.
pub(crate) fn empty_all(root: &Path, snapshots: &dyn Snapshotter) {
    let Ok(entries) = std::fs::read_dir(trash_dir(root)) else {
        return;
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        tracing::info!(container = %id, "finishing the removal of a container");
        empty(snapshots, &id, &entry.path());
    }
}

/// The snapshot, then the directory, unless something is still mounted in
/// it (deleting through a mount would empty what the mount shows).
fn empty(snapshots: &dyn Snapshotter, id: &str, dir: &Path) {
    let rootfs = dir.join("rootfs");
    while berth_snapshot::unmount(&rootfs).is_ok() {}
    if berth_snapshot::is_mounted(&rootfs) {
        tracing::warn!(path = %rootfs.display(), "a removed container's root file system is busy; left for the next start");
        return;
    }
    remove_snapshot(snapshots, id);
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), error = %e, "deleting a removed container's files");
    }
}

fn remove_snapshot(snapshots: &dyn Snapshotter, id: &str) {
    match snapshots.remove(id) {
        Ok(()) | Err(SnapshotError::NotFound(_)) => {}
        Err(e) => tracing::warn!(container = %id, error = %e, "removing the container snapshot"),
    }
}
