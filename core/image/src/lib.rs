//! The image model and image archives. This crate owns the image
//! configuration (with chain IDs), `berth load` and `berth save` for OCI
//! image layouts and `docker save` archives, and `berth import` of a root
//! filesystem tarball as a one-layer image.
//!
//! Everything streams: blobs go from the archive straight into the
//! [`ContentStore`](berth_content::ContentStore) (which verifies them) and
//! from the store straight into the archive being written; no layer is ever
//! held in memory or copied to a temp file. Functions are async (tokio).
//!
//! This crate never records images by name: it returns [`LoadedImage`]s and
//! the caller writes the image records (`berth-state`). It never writes an
//! archive path to the file system.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_content::ContentStore;
//! let store = ContentStore::open("/var/lib/berth/content").await?;
//! let file = tokio::fs::File::open("busybox.tar").await?;
//! for image in berth_image::load(file, &store).await? {
//!     println!("{:?} {}", image.reference, image.manifest);
//! }
//! # Ok(()) }
//! ```

mod changes;
mod config;
mod duration;
mod error;
mod headers;
mod import;
mod load;
mod paths;
mod platform;
mod save;
mod stream;

pub use changes::apply_change;
pub use config::{ContainerConfig, Healthcheck, History, ImageConfig, RootFs, chain_ids};
pub use duration::parse_duration;
pub use error::ImageError;
pub use import::{ImportOptions, import, rfc3339};
pub use load::{LoadedImage, load, load_dir};
pub use platform::Platform;
pub use save::{ArchiveFormat, save};
pub use stream::Compression;

/// Annotation keys of OCI layout indexes.
pub mod annotations {
    /// The tag (or, from some tools, the whole reference).
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// The full reference, as containerd and Docker 25+ write it.
    pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
}

/// Layer media types that `berth_oci::media_types` does not (yet) name.
pub mod media {
    /// An uncompressed Docker layer, as docker save archives hold them.
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// containerd's name for a zstd Docker layer.
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
}
