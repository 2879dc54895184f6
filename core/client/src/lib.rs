//! An OCI Distribution v1.1 registry client: authentication (basic and
//! Docker token auth, with docker-compatible credential storage), blobs
//! (streamed, digest-verified downloads; monolithic, chunked, resumable and
//! cross-repository-mounted uploads), manifests, tags, referrers and the
//! catalog, and image-level pull and push over small traits.
//!
//! It owns the wire protocol only. It never stores images itself: callers
//! implement [`BlobSource`] and [`BlobSink`] for their store, and it never
//! draws progress bars: callers implement [`Progress`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_client::ClientError> {
//! use berth_client::{ClientConfig, RegistryClient, Repository};
//! let client = RegistryClient::new(ClientConfig::default())?;
//! let repo = Repository::new("localhost:5000", "team/app")?;
//! let tags = client.list_all_tags(&repo).await?;
//! # Ok(()) }
//! ```

// ClientError carries registry, repository, operation and the registry's
// own error body so users are told what to do; it is built only on failure
// paths, where moving ~150 bytes is nothing next to the network round trip.
#![allow(clippy::result_large_err)]

mod artifact;
mod auth;
mod blobs;
mod challenge;
mod cred_helper;
mod credentials;
mod error;
mod image;
mod listing;
mod login;
mod manifests;
mod platform;
mod retry;
mod transfer;
mod transport;
mod upload;

pub use artifact::Artifact;
pub use blobs::BlobInfo;
pub use challenge::{Challenge, ChallengeError, parse_challenges, preferred_challenge};
pub use credentials::{CredentialError, CredentialStore, Credentials};
pub use error::{BoxError, ClientError};
pub use image::{PullPlan, PulledImage, PushedImage};
pub use listing::{Catalog, TagsPage};
pub use manifests::{Manifest, ManifestInfo};
pub use platform::{Platform, PlatformError};
pub use retry::RetryPolicy;
pub use transfer::{BlobOutcome, BlobSink, BlobSource, BoxReader, NoProgress, Progress};
pub use transport::{ClientConfig, RegistryClient, Repository};
pub use upload::{MountOutcome, UploadSession};
