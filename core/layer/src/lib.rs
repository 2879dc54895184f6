//! Image layers on disk: [`apply`] streams a layer blob (plain, gzip or
//! zstd tar; OCI or Docker media type) onto a directory while verifying its
//! diffID, and [`diff`] turns an overlayfs upper directory back into a
//! layer, deterministically.
//!
//! This crate owns the translation between tar entries and files. It must
//! never write outside the target directory: every entry path is resolved
//! one component at a time without following symlinks, absolute paths and
//! `..` are refused, and hard links must point at files already inside.
//! It never holds a layer in memory: tar headers (PAX records, GNU long
//! names), the layer's size and its entry count are bounded by [`Limits`].
//! It does not decide where snapshots live or when they are discarded —
//! that is the snapshotter's job.
//!
//! ```no_run
//! # fn demo() -> Result<(), berth_layer::LayerError> {
//! use berth_layer::{apply_fresh, diff, ApplyOptions, Compression};
//! use berth_oci::media_types::OCI_LAYER_GZIP;
//! let blob = std::fs::File::open("/tmp/layer.tar.gz").unwrap();
//! let stats = apply_fresh("/tmp/snap".as_ref(), OCI_LAYER_GZIP, blob, None, &ApplyOptions::default())?;
//! println!("applied {} entries, diffID {}", stats.entries, stats.diff_id);
//! let out = std::fs::File::create("/tmp/again.tar.zst").unwrap();
//! let d = diff("/tmp/snap".as_ref(), Compression::Zstd, out)?;
//! println!("{} {} {} bytes", d.media_type, d.digest, d.size);
//! # Ok(()) }
//! ```

mod apply;
mod compression;
mod diff;
mod error;
mod hashio;
mod limits;
pub mod path;
mod root;

pub use apply::{ApplyOptions, ApplyStats, WhiteoutMode, apply, apply_fresh};
pub use compression::Compression;
pub use diff::{DiffStats, diff};
pub use error::LayerError;
pub use limits::Limits;
