//! The image service: the local image store (records in sled, blobs in the
//! content store, layers unpacked into snapshots shared by chain ID), and
//! images in and out of it — pulls and pushes through `berth_client`,
//! archives through `berth_image`.
//!
//! One file per verb family: `pull`, `push`, `archives` (load, save,
//! import), `prune`, `mount`; `store` records images, `blobs` is the
//! content store as the registry client's source and sink.

mod archives;
mod blobs;
mod mount;
mod prune;
mod pull;
mod push;
mod store;

use std::sync::Arc;

use berth_client::{ClientConfig, Credentials, RegistryClient};
use berth_image::{History, ImageConfig};
use berth_oci::{Digest, Reference};
use berth_registry::Registry;
use berth_state::ImageRecord;
use berth_unpack::Unpacker;

use crate::EngineError;
use crate::policy::Policy;

pub use archives::Save;
pub use blobs::LocalBlobs;
pub use prune::PruneReport;
pub use pull::Pull;
pub use push::Push;

/// The image service. Cheap to clone: every part is a shared handle.
#[derive(Clone)]
pub struct Images {
    registry: Registry,
    client: ClientConfig,
    unpacker: Unpacker,
    policy: Arc<Policy>,
}

/// An image and its config, as `inspect` shows it.
pub struct ImageDetails {
    pub record: ImageRecord,
    pub config: ImageConfig,
}

/// Registry credentials given with one pull or push.
pub struct Auth {
    pub username: String,
    pub password: String,
}

pub(crate) fn parse_ref(s: &str) -> Result<Reference, EngineError> {
    s.parse()
        .map_err(|e: berth_oci::ReferenceError| EngineError::invalid(e.to_string()))
}

impl Images {
    pub fn new(
        registry: Registry,
        client: ClientConfig,
        unpacker: Unpacker,
        policy: Arc<Policy>,
    ) -> Images {
        Images {
            registry,
            client,
            unpacker,
            policy,
        }
    }

    /// The snapshotter images are unpacked into (containers prepare their
    /// root file systems on it).
    pub fn unpacker(&self) -> &Unpacker {
        &self.unpacker
    }

    /// The content store and image database.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The local store's blobs, as a registry client's source or sink.
    pub fn blobs(&self) -> LocalBlobs {
        LocalBlobs::new(
            self.registry.content().clone(),
            self.registry.state().clone(),
        )
    }

    fn client_for(
        &self,
        reference: &Reference,
        auth: Option<Auth>,
    ) -> Result<RegistryClient, EngineError> {
        let client = RegistryClient::new(self.client.clone()).map_err(|e| {
            EngineError::internal(format!("setting up a registry client for {reference}: {e}"))
        })?;
        if let Some(a) = auth {
            client.use_credentials(
                &reference.registry,
                Credentials::new(a.username, a.password),
            );
        }
        Ok(client)
    }

    /// Every local image.
    pub fn list(&self) -> Result<Vec<ImageRecord>, EngineError> {
        Ok(self.registry.state().list_images()?)
    }

    /// The local image `reference` names.
    pub fn get(&self, reference: &str) -> Result<ImageRecord, EngineError> {
        let r = parse_ref(reference)?;
        self.registry
            .state()
            .get_image(&r.to_string())?
            .ok_or_else(|| {
                EngineError::not_found(format!("no local image {r}; pull, load or import it first"))
            })
    }

    /// An image's config, read from the content store.
    pub async fn config(&self, digest: &Digest) -> Result<ImageConfig, EngineError> {
        store::read_config(self, digest).await
    }

    /// An image's record and config.
    pub async fn inspect(&self, reference: &str) -> Result<ImageDetails, EngineError> {
        let record = self.get(reference)?;
        let config = self.config(&record.config).await?;
        Ok(ImageDetails { record, config })
    }

    /// How an image's layers were made, oldest first.
    pub async fn history(&self, reference: &str) -> Result<Vec<History>, EngineError> {
        Ok(self.inspect(reference).await?.config.history)
    }

    /// Name the image `source` names `target` too; returns the new record.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord, EngineError> {
        let source = parse_ref(source)?;
        let target = parse_ref(target)?;
        let state = self.registry.state();
        let mut image = state
            .get_image(&source.to_string())?
            .ok_or_else(|| EngineError::not_found(format!("no local image {source}")))?;
        image.reference = target.to_string();
        state.put_image(&image)?;
        Ok(image)
    }

    /// Remove the name `reference`; its blobs and layers go at the next
    /// prune. Returns the removed record.
    pub fn remove(&self, reference: &str) -> Result<ImageRecord, EngineError> {
        let reference = parse_ref(reference)?;
        self.registry
            .state()
            .remove_image(&reference.to_string())?
            .ok_or_else(|| EngineError::not_found(format!("no local image {reference}")))
    }
}
