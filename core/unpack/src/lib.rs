//! Unpacking an image into snapshots. Each layer becomes a committed
//! snapshot named by its chain ID, so identical layer stacks are unpacked
//! once and shared by every image that has them. Layers already unpacked
//! are skipped; each missing one is applied as soon as its blob is in the
//! content store and its parent is committed, so unpacking overlaps the
//! download of the layers above it.
//!
//! A layer is applied straight into the snapshot's writable directory (the
//! overlay upper dir, or the bottom layer's own dir), with overlay-style
//! whiteouts, by `berth-layer`, which verifies its diffID, within the
//! [`Limits`] given to [`Unpacker::with_limits`] (tar header sizes, layer
//! bytes, entries). A failed layer's snapshot is removed: nothing
//! half-unpacked is ever committed.
//!
//! This crate never downloads: the caller says when each blob is ready.

mod error;
mod unpacker;

pub use berth_layer::Limits;
pub use error::UnpackError;
pub use unpacker::{LayerRef, Unpacked, Unpacker, writable_dir};
