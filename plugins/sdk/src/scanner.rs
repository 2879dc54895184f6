//! Scanners: the [`Scanner`] trait, [`export_scanner!`](crate::export_scanner), and readers
//! over the host's read-only image file system.

use std::io;

pub use crate::bindings::scanner::berth::plugin::image_fs::{Entry, FileKind, FsError, Rootfs};
pub use crate::bindings::scanner::exports::berth::plugin::scan::{
    Finding, ImageInfo, ScanError, Severity,
};

// wit-bindgen derives `Display` (via `Debug`) and `Error` for WIT error variants.

/// The largest read the host serves in one call (the WIT says 4 MiB).
pub const MAX_READ: u32 = 4 << 20;

/// A scanner. One instance (created with `Default`) serves every call.
pub trait Scanner {
    /// Scans one image through its read-only file system.
    fn scan(&self, image: &ImageInfo, fs: &Rootfs) -> Result<Vec<Finding>, ScanError>;
}

/// Whether `path` exists in the image (a final symlink counts).
pub fn exists(fs: &Rootfs, path: &str) -> Result<bool, FsError> {
    match fs.stat(path) {
        Ok(_) => Ok(true),
        Err(FsError::NotFound) | Err(FsError::NotADirectory) => Ok(false),
        Err(err) => Err(err),
    }
}

/// A whole file, refusing files larger than `limit` bytes (a package database is a few MiB;
/// a limit keeps a hostile image from exhausting the plugin's memory).
pub fn read_to_end(fs: &Rootfs, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
    let mut data = Vec::new();
    let mut offset = 0u64;
    loop {
        let chunk = fs.read(path, offset, MAX_READ)?;
        if chunk.is_empty() {
            return Ok(data);
        }
        offset += chunk.len() as u64;
        if offset > limit {
            return Err(FsError::Denied(format!(
                "{path} is larger than the scanner's limit of {limit} bytes"
            )));
        }
        data.extend_from_slice(&chunk);
    }
}

/// A whole file as text (invalid UTF-8 replaced), with a size limit as in [`read_to_end`].
pub fn read_to_string(fs: &Rootfs, path: &str, limit: u64) -> Result<String, FsError> {
    let data = read_to_end(fs, path, limit)?;
    Ok(String::from_utf8(data)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned()))
}

/// Streams a file through [`std::io::Read`] in chunks of `chunk` bytes, so a large binary is
/// never held in memory whole.
pub struct FileReader<'a> {
    fs: &'a Rootfs,
    path: String,
    offset: u64,
    chunk: u32,
}

impl<'a> FileReader<'a> {
    /// A reader of `path` from its start.
    pub fn new(fs: &'a Rootfs, path: &str, chunk: u32) -> Self {
        FileReader {
            fs,
            path: path.to_owned(),
            offset: 0,
            chunk: chunk.clamp(1, MAX_READ),
        }
    }
}

impl io::Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = u32::try_from(buf.len()).unwrap_or(u32::MAX).min(self.chunk);
        let data = self
            .fs
            .read(&self.path, self.offset, want)
            .map_err(|err| io::Error::other(format!("{}: {err}", self.path)))?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// Exports a [`Scanner`] type as the plugin's `scanner` world.
#[macro_export]
macro_rules! export_scanner {
    ($ty:ident) => {
        const _: () = {
            thread_local! {
                static __BERTH_SCANNER: $ty = <$ty as ::core::default::Default>::default();
            }


            struct __BerthScannerExport;

            impl $crate::bindings::scanner::exports::berth::plugin::scan::Guest
                for __BerthScannerExport
            {
                fn scan(
                    image: $crate::scanner::ImageInfo,
                    fs: &$crate::scanner::Rootfs,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::scanner::Finding>,
                    $crate::scanner::ScanError,
                > {
                    __BERTH_SCANNER.with(|s| $crate::scanner::Scanner::scan(s, &image, fs))
                }
            }

            // Native builds (unit tests) skip the exports: their wasm symbol names do not link

            // into a native cdylib.

            #[cfg(target_arch = "wasm32")]

            $crate::bindings::scanner::__export_scanner_world!(
                __BerthScannerExport with_types_in $crate::bindings::scanner
            );
            // Natively, keep the plugin type "used" so its code is still type- and
            // lint-checked, and unit tests see no dead-code noise.
            #[cfg(not(target_arch = "wasm32"))]
            const _: () = {
                let _ = <__BerthScannerExport as $crate::bindings::scanner::exports::berth::plugin::scan::Guest>::scan;
            };
        };
    };
}
