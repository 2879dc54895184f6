//! The contract every snapshotter keeps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::SnapshotError;

/// Free-form labels on a snapshot (e.g. the layer digest it was unpacked from).
pub type Labels = BTreeMap<String, String>;

/// The label (any value) that makes an active snapshot *disposable*: its
/// data is thrown away whole when its user is done or after a crash (a
/// container run with `--rm`). The snapshotter may then skip making its
/// writes durable: nothing is synced when it is unmounted, it need not
/// mount again once unmounted or after a crash, and it cannot be
/// committed ([`SnapshotError::FailedPrecondition`]). A caller that
/// finds one after a crash removes it.
pub const DISPOSABLE: &str = "berth.snapshot/disposable";

/// What a snapshot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable; made by `prepare`; can be committed.
    Active,
    /// Read-only; made by `view`; cannot be committed.
    View,
    /// Immutable; made by `commit`; the only kind that can be a parent.
    Committed,
}

/// What `stat` and `walk` report about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The key (active, view) or name (committed).
    pub name: String,
    /// The committed snapshot this one is built on.
    pub parent: Option<String>,
    pub kind: Kind,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub labels: Labels,
}

/// Disk used by a snapshot's own layer (not its parents').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated on disk, hard-linked files counted once.
    pub size: u64,
    /// Files, directories and other inodes of the layer, its root directory
    /// included, hard links counted once.
    pub inodes: u64,
}

/// One mount, as a caller passes it to mount(2): `mount -t TYPE SOURCE
/// TARGET -o OPTIONS`. Apply a list with [`crate::mount_all`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// File system type: `"bind"` for bind mounts, `"overlay"`, ...
    pub fs_type: String,
    pub source: PathBuf,
    /// Where to mount, relative to the target given to `mount_all`; `None`
    /// is the target itself.
    pub target: Option<PathBuf>,
    /// mount(8)-style options: flags (`ro`, `rbind`, ...) and file-system
    /// data (`lowerdir=...`). Paths in options are absolute; `mount_all`
    /// shortens them when they would not fit the kernel's one-page limit.
    pub options: Vec<String>,
}

/// A store of layered file-system snapshots, in the spirit of containerd's.
///
/// Keys and committed names share one namespace. Only committed snapshots
/// can be parents; a parent cannot be removed while it has children. Every
/// method is atomic with respect to the metadata: after a crash a snapshot
/// either exists whole or not at all.
///
/// Errors every implementation must use for these conditions:
/// - [`SnapshotError::NotFound`]: the key, name or parent does not exist;
/// - [`SnapshotError::AlreadyExists`]: `prepare`/`view` on a taken key,
///   `commit` to a taken name. An image store names committed layers by
///   chain ID, so identical layer stacks are stored once: it calls
///   `stat(chain_id)` before unpacking, and treats `AlreadyExists` on commit
///   as "someone else unpacked it first";
/// - [`SnapshotError::FailedPrecondition`]: the parent is not committed,
///   committing something that is not active, removing a snapshot that has
///   children.
///
/// Every mount returned is `nosuid,nodev`: snapshots hold what images and
/// containers wrote, which the host never runs a setuid file of nor opens a
/// device node of. A runtime gives a container's own copy of its root
/// mount those back, in the container's mount namespace only.
pub trait Snapshotter: Send + Sync {
    /// Information about the snapshot called `key`.
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;

    /// Create a writable snapshot `key` on top of committed `parent` (or
    /// empty), and return the mounts that present it.
    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>, SnapshotError>;

    /// Create a read-only snapshot `key` of committed `parent` (or empty),
    /// and return the mounts that present it. Writes through them fail.
    fn view(
        &self,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>, SnapshotError>;

    /// The mounts of active or view snapshot `key` again.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;

    /// Turn active snapshot `key` into committed snapshot `name` (with
    /// `labels` added to its own). The key stops existing. The caller must
    /// have unmounted it.
    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<(), SnapshotError>;

    /// Remove snapshot `key` of any kind that has no children, and its data.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;

    /// Disk used by the snapshot's own layer.
    fn usage(&self, key: &str) -> Result<Usage, SnapshotError>;

    /// Call `visit` with every snapshot, in no particular order.
    fn walk(&self, visit: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError>;
}

/// Reject keys we cannot store or name in errors sensibly.
pub(crate) fn check_key(key: &str) -> Result<(), SnapshotError> {
    if key.is_empty() || key.len() > 1024 {
        return Err(SnapshotError::InvalidKey(key.to_owned()));
    }
    Ok(())
}
