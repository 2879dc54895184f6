//! Snapshots: layered file systems that images are unpacked into and
//! containers run on. This crate owns the [`Snapshotter`] contract (modelled
//! on containerd's), its overlayfs implementation ([`OverlaySnapshotter`]),
//! the helpers that apply the [`Mount`]s a snapshotter returns, and the
//! `conformance` suite (feature `conformance`) every implementation must pass.
//!
//! It never decides what an image is or which snapshots are garbage: the
//! image store names committed layers by chain ID and removes them.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_snapshot::{Labels, MountGuard, OverlaySnapshotter, Snapshotter};
//! let state = berth_state::State::open("/var/lib/berth/state")?;
//! let snaps = OverlaySnapshotter::open("/var/lib/berth/overlay", &state)?;
//! if snaps.stat("sha256:chain-id-of-layer-1").is_err() {
//!     let mounts = snaps.prepare("unpack-1", None, Labels::new())?;
//!     let guard = MountGuard::mount(&mounts, std::path::Path::new("/mnt/unpack"))?;
//!     // ... apply the layer's tar here ...
//!     guard.unmount()?;
//!     snaps.commit("sha256:chain-id-of-layer-1", "unpack-1", Labels::new())?;
//! }
//! let mounts = snaps.prepare("container-1", Some("sha256:chain-id-of-layer-1"), Labels::new())?;
//! # Ok(()) }
//! ```

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod mount;
mod overlay;
mod snapshotter;

pub use error::SnapshotError;
pub use mount::{
    MountCall, MountError, MountGuard, Mounter, NixMounter, is_mounted, mount_all, mount_all_with,
    plan, unmount,
};
pub use overlay::OverlaySnapshotter;
pub use snapshotter::{DISPOSABLE, Info, Kind, Labels, Mount, Snapshotter, Usage};
