//! The overlayfs [`Snapshotter`]: every snapshot is a directory
//! `ROOT/snapshots/ID/{fs,work}`; an active snapshot mounts as an overlay
//! whose upper dir is its own `fs` and whose lower dirs are its committed
//! ancestors' `fs` dirs, nearest first. Committing changes only metadata:
//! the upper dir becomes the layer.

mod disk;
mod meta;

use std::collections::HashMap;
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_state::{JsonTree, State};

use crate::snapshotter::check_key;
use crate::{Info, Kind, Labels, Mount, SnapshotError, Snapshotter, Usage};
use meta::Record;

/// The kernel refuses more lower layers than this (overlayfs' limit); a
/// longer chain in the metadata means it is corrupt (a cycle).
const MAX_DEPTH: usize = 500;

/// Snapshots as overlayfs layers under one root directory, with metadata in
/// berth's state database.
pub struct OverlaySnapshotter {
    root: PathBuf,
    meta: JsonTree,
    next_id: AtomicU64,
    index_off: bool,
    volatile: bool,
}

impl OverlaySnapshotter {
    /// Open (creating if needed) the snapshotter at `root`, checking that
    /// its file system can back overlayfs and removing directories that a
    /// crash left without metadata.
    pub fn open(root: impl Into<PathBuf>, state: &State) -> Result<Self, SnapshotError> {
        let root = root.into();
        let printable = root.to_string_lossy();
        // overlayfs separates options with ',' and layers with ':'.
        if printable.contains([',', ':']) {
            return Err(SnapshotError::UnusableRoot { path: root });
        }
        let snapshots = root.join("snapshots");
        // Private: an upper dir holds what a container wrote, setuid files
        // and device nodes included, on the host's file system. Only the
        // `fs` dirs below keep the mode the container's root needs.
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&snapshots)
            .map_err(SnapshotError::io("create directory", &snapshots))?;
        disk::check_d_type(&root)?;
        let meta = state.json_tree("snapshots")?;
        let known: HashMap<u64, String> = meta::list(&meta)?
            .into_iter()
            .map(|(k, r)| (r.id, k))
            .collect();
        let highest = disk::reconcile(&snapshots, &known)?;
        // Without index=off, overlayfs records lower-layer file handles in
        // the upper dir and refuses a later mount over a changed lower
        // stack (which a re-created layer would be).
        let index_off = Path::new("/sys/module/overlay/parameters/index").exists();
        let volatile = disk::kernel_at_least(5, 10);
        tracing::debug!(root = %root.display(), snapshots = known.len(), index_off, volatile, "overlay snapshotter open");
        Ok(OverlaySnapshotter {
            root,
            meta,
            next_id: AtomicU64::new(highest + 1),
            index_off,
            volatile,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    /// Reserve a fresh ID by creating its directory (creation is the
    /// reservation, so concurrent callers cannot share one).
    fn new_dir(&self) -> Result<u64, SnapshotError> {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let dir = self.dir(id);
            match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(SnapshotError::io("create directory", &dir)(e)),
            }
            let result =
                [("fs", 0o755), ("work", 0o700)]
                    .into_iter()
                    .try_for_each(|(sub, mode)| {
                        let p = dir.join(sub);
                        // `fs` is the container's `/` (or the layer's):
                        // its mode is set, not left to berthd's umask.
                        DirBuilder::new()
                            .mode(mode)
                            .create(&p)
                            .and_then(|()| {
                                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                            })
                            .map_err(SnapshotError::io("create directory", &p))
                    });
            if let Err(e) = result {
                self.discard(id);
                return Err(e);
            }
            return Ok(id);
        }
    }

    fn discard(&self, id: u64) {
        let dir = self.dir(id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            // No metadata names it, so the next open removes it.
            tracing::warn!(path = %dir.display(), error = %e, "removing snapshot directory failed");
        }
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        kind: Kind,
    ) -> Result<Vec<Mount>, SnapshotError> {
        check_key(key)?;
        if let Some(p) = parent {
            check_key(p)?;
        }
        // Fail early, before touching the disk, in the common case.
        if self.meta.get::<Record>(key)?.is_some() {
            return Err(SnapshotError::AlreadyExists(key.to_owned()));
        }
        let id = self.new_dir()?;
        let record = Record {
            id,
            parent: parent.map(str::to_owned),
            kind,
            created: berth_state::now(),
            labels,
            children: 0,
        };
        if let Err(e) = meta::create(&self.meta, key, &record) {
            self.discard(id);
            return Err(e);
        }
        tracing::debug!(key, id, ?kind, parent, "snapshot created");
        self.mounts_of(key, &record)
    }

    /// `fs` dirs of the ancestors of a snapshot whose parent is `parent`,
    /// nearest first.
    fn lower_dirs(
        &self,
        key: &str,
        mut parent: Option<String>,
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut dirs = Vec::new();
        while let Some(p) = parent {
            if dirs.len() >= MAX_DEPTH {
                return Err(SnapshotError::precondition(
                    key,
                    format!("has more than {MAX_DEPTH} ancestors, which overlayfs cannot mount"),
                ));
            }
            let rec = meta::get(&self.meta, &p)?;
            dirs.push(self.dir(rec.id).join("fs"));
            parent = rec.parent;
        }
        Ok(dirs)
    }

    fn mounts_of(&self, key: &str, rec: &Record) -> Result<Vec<Mount>, SnapshotError> {
        let own = self.dir(rec.id);
        let lowers = self.lower_dirs(key, rec.parent.clone())?;
        // Nothing on a snapshot is ever run or opened by the host: a
        // setuid file or a device node a container or an image planted
        // stays inert for local users, whatever reaches the mount.
        let bind = |source: PathBuf, mode: &str| Mount {
            fs_type: "bind".into(),
            source,
            target: None,
            options: vec!["rbind".into(), mode.into(), "nosuid".into(), "nodev".into()],
        };
        let lowerdir = || {
            let list: Vec<String> = lowers
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            format!("lowerdir={}", list.join(":"))
        };
        let overlay = |mut options: Vec<String>| {
            options.extend(["nosuid".into(), "nodev".into()]);
            if self.index_off {
                options.push("index=off".into());
            }
            // Unmounting an overlay syncs its whole upper file system (the
            // host's root, often): tens of milliseconds on a busy disk, for
            // data a disposable snapshot throws away. `volatile` (Linux
            // 5.10) skips that sync, and refuses a later mount of the same
            // upper dir, which the contract allows.
            if self.volatile
                && rec.kind == Kind::Active
                && rec.labels.contains_key(crate::DISPOSABLE)
            {
                options.push("volatile".into());
            }
            Mount {
                fs_type: "overlay".into(),
                source: "overlay".into(),
                target: None,
                options,
            }
        };
        let mount = match (rec.kind, lowers.len()) {
            (Kind::Committed, _) => {
                return Err(SnapshotError::precondition(
                    key,
                    "committed snapshots are not mounted; make a view of them",
                ));
            }
            (Kind::Active, 0) => bind(own.join("fs"), "rw"),
            (Kind::Active, _) => overlay(vec![
                lowerdir(),
                format!("upperdir={}", own.join("fs").display()),
                format!("workdir={}", own.join("work").display()),
            ]),
            (Kind::View, 0) => bind(own.join("fs"), "ro"),
            (Kind::View, 1) => bind(lowers[0].clone(), "ro"),
            (Kind::View, _) => overlay(vec!["ro".into(), lowerdir()]),
        };
        Ok(vec![mount])
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        Ok(meta::get(&self.meta, key)?.info(key))
    }

    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, labels, Kind::Active)
    }

    fn view(
        &self,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, labels, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let rec = meta::get(&self.meta, key)?;
        self.mounts_of(key, &rec)
    }

    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<(), SnapshotError> {
        check_key(name)?;
        meta::commit(&self.meta, name, key, &labels, berth_state::now())?;
        tracing::debug!(name, key, "snapshot committed");
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let rec = meta::remove(&self.meta, key)?;
        // The metadata is gone first: a crash here leaves only a directory
        // that the next open removes.
        self.discard(rec.id);
        tracing::debug!(key, id = rec.id, "snapshot removed");
        Ok(())
    }

    fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        let rec = meta::get(&self.meta, key)?;
        disk::usage(&self.dir(rec.id).join("fs"))
    }

    fn walk(&self, visit: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError> {
        for (key, rec) in meta::list(&self.meta)? {
            visit(&rec.info(&key));
        }
        Ok(())
    }
}
