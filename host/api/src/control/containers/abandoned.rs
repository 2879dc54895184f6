//! Start-up repair of container creates a killed berthd left half done.
//! A create makes, in order: the container directory, the snapshot and
//! its root file system mount (then hooks run, volumes are made), the
//! record, `config.json` and `shim.json`, the shim (which waits on the
//! `start` FIFO while the network is wired), and the go. What a crash
//! leaves at each step, and what [`clean_abandoned`] does with it:
//!
//! - a directory with no record (killed before the record): its root file
//!   system is unmounted, its snapshot, the anonymous volumes made for it
//!   and its directory removed (the directory last, so that what a
//!   failure leaves is found again at the next start);
//! - a record without `config.json` or `shim.json` and no shim (killed
//!   before the files were written): removed as `rm -v` would;
//! - a shim still waiting for its go (killed while wiring the network):
//!   told there is none, so it records the container as exited (125,
//!   "berthd did not start the container"), which `ps -a` shows and `rm`
//!   removes; a `--rm` container is removed.
//!
//! Besides, as Docker does: a `--rm` container whose shim is gone (a
//! reboot, a daemon killed while `run --rm` waited) is removed, whatever
//! its files say (they are written without fsync, see `shim_files`), and
//! one still running is removed when it ends. Removals a killed daemon
//! left in `ROOT/trash` are finished (see `super::trash`).
//!
//! Nothing else runs yet when this does, so nothing found is in flight.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::record::{ContainerRecord, shim_alive, tree};
use crate::control::ControlApp;

/// Undo or finish every create a previous berthd did not complete.
pub async fn clean_abandoned(app: &Arc<ControlApp>) {
    let records: Vec<ContainerRecord> = match tree(app).and_then(|t| Ok(t.list()?)) {
        Ok(all) => all.into_iter().map(|(_, r)| r).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "listing containers to find unfinished creates");
            return;
        }
    };
    let (root, snapshots) = (app.root.clone(), app.unpacker.snapshots().clone());
    let emptied =
        tokio::task::spawn_blocking(move || super::trash::empty_all(&root, &*snapshots)).await;
    if let Err(e) = emptied {
        tracing::warn!(error = %e, "finishing removals under way");
    }
    let known: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
    for r in records {
        let prepared = ["config.json", "shim.json"]
            .iter()
            .all(|f| r.dir.join(f).exists());
        let alive = shim_alive(&r.dir);
        if !prepared && !alive {
            tracing::warn!(container = %r.name, "removing a container whose create never finished");
            super::lifecycle::cleanup(app, &r, true).await;
        } else if !alive && r.auto_remove {
            tracing::info!(container = %r.name, "removing a --rm container that ended while berthd was away");
            super::lifecycle::cleanup(app, &r, true).await;
        } else if alive && super::start::abort_start(&r.dir.join("start")) {
            tracing::warn!(container = %r.name, "a container berthd never started is recorded as exited");
            if r.auto_remove {
                super::lifecycle::remove_when_done(app, &r);
            }
        } else if alive && r.auto_remove {
            super::lifecycle::remove_when_done(app, &r);
        }
    }
    let containers = app.root.join("containers");
    let app = app.clone();
    let undone =
        tokio::task::spawn_blocking(move || remove_unrecorded(&app, &containers, &known)).await;
    if let Err(e) = undone {
        tracing::warn!(error = %e, "removing unfinished container directories");
    }
}

/// Container directories no record names: unmount, remove the snapshot
/// of the same key and the anonymous volumes made for it, remove the
/// directory.
fn remove_unrecorded(app: &ControlApp, containers: &Path, known: &HashSet<String>) {
    let snapshots = app.unpacker.snapshots();
    let Ok(entries) = std::fs::read_dir(containers) else {
        return;
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if known.contains(&id) || !is_container_id(&id) {
            continue;
        }
        let dir = entry.path();
        let rootfs = dir.join("rootfs");
        // Every layer of a stacked mount; stop at the first failure.
        while berth_snapshot::unmount(&rootfs).is_ok() {}
        if berth_snapshot::is_mounted(&rootfs) {
            // Never delete through a mount: that would empty the snapshot
            // while something still uses it. The next start tries again.
            tracing::warn!(path = %rootfs.display(), "an unfinished container's root file system is busy; left for the next start");
            continue;
        }
        match snapshots.remove(&id) {
            Ok(()) | Err(berth_snapshot::SnapshotError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "removing an unfinished container's snapshot");
            }
        }
        if !crate::control::volumes::remove_made_for(app, &id) {
            tracing::warn!(container = %id, "an unfinished container's volumes are left for the next start");
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::warn!(container = %id, "removed what an unfinished create left"),
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "removing an unfinished container's directory")
            }
        }
    }
}

/// The ids berth gives containers: 64 lowercase hex digits. Anything else
/// in the directory is not berth's to remove.
fn is_container_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_container_ids_are_taken_for_containers() {
        assert!(is_container_id(&"ab12".repeat(16)));
        assert!(!is_container_id("lost+found"));
        assert!(!is_container_id(&"AB12".repeat(16)));
        assert!(!is_container_id(&"ab12".repeat(15)));
    }
}
