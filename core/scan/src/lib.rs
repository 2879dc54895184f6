//! Image scanning: what a scanner finds ([`Finding`], [`Severity`]), the
//! [`Scanner`] trait native scanners and the plugin host's adapter both
//! implement, and [`RootView`], the read-only view of an unpacked image
//! rootfs a scanner is given. A `RootView` never leaves its root: paths are
//! absolute inside the image, `..` stops at the root, symlinks resolve
//! inside the image (absolute targets are relative to the root), and a read
//! returns at most [`MAX_READ`] bytes. This crate knows nothing of Wasm.
//!
//! ```no_run
//! use berth_scan::RootView;
//! let root = RootView::open("/var/lib/berth/snapshots/42/fs")?;
//! for entry in root.list_dir("/etc").unwrap_or_default() {
//!     println!("{} {:?}", entry.name, entry.kind);
//! }
//! let head = root.read("/etc/os-release", 0, 4096).unwrap_or_default();
//! # let _ = head;
//! # Ok::<(), std::io::Error>(())
//! ```

mod rootview;

pub use rootview::{Entry, FileKind, FsError, MAX_DIR_ENTRIES, MAX_READ, RootView};

use serde::{Deserialize, Serialize};

/// The image being scanned.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ImageInfo {
    /// The reference it is known by, e.g. `localhost:5000/app:1`.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The image configuration (OCI image config JSON).
    pub config_json: String,
}

/// How bad a finding is, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    None,
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

/// One thing a scanner found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    /// `package`, `vulnerability`, or another kind the scanner defines.
    pub kind: String,
    /// The advisory ID, or `ECOSYSTEM/NAME` for a package.
    pub id: String,
    pub package: String,
    /// OSV ecosystem name (`Debian`, `Alpine`, `crates.io`...).
    pub ecosystem: String,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub severity: Severity,
    pub title: String,
    /// Where it was found, e.g. `/var/lib/dpkg/status`.
    pub path: String,
}

/// Why a scan failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The scanner cannot scan this kind of image.
    #[error("scanner {scanner} does not support this image: {reason}")]
    Unsupported { scanner: String, reason: String },
    #[error("scanner {scanner} failed: {reason}")]
    Failed { scanner: String, reason: String },
}

/// Something that scans images through a [`RootView`].
pub trait Scanner: Send + Sync {
    /// The name the operator knows it by.
    fn name(&self) -> &str;
    /// Scans one image. Blocking: may take seconds.
    fn scan(&self, image: &ImageInfo, fs: &RootView) -> Result<Vec<Finding>, ScanError>;
}

#[cfg(test)]
mod tests;
