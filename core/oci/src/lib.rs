//! Protocol knowledge shared by the registry server, the client, the image
//! store and the CLI: digests, repository names and image references, media
//! types, the parts of manifests the distribution protocol must understand,
//! and the OCI Distribution error codes.
//!
//! This crate does no I/O. It never opens files or sockets; callers stream
//! bytes through [`Hasher`] themselves.
//!
//! ```
//! use berth_oci::{Digest, Reference};
//! let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
//! assert_eq!(d.algorithm().as_str(), "sha256");
//! let r: Reference = "busybox".parse().unwrap();
//! assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
//! ```

mod digest;
mod errors;
mod manifest;
pub mod media_types;
mod name;
mod reference;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use errors::{ErrorBody, ErrorCode, ErrorInfo};
pub use manifest::{Descriptor, ManifestError, ManifestSummary};
pub use name::{NameError, validate_repository, validate_tag};
pub use reference::{DEFAULT_REGISTRY, Reference, ReferenceError};
