//! A push: the local image's blobs the registry lacks (mounted from the
//! repository it was pulled from when that is on the same registry), then
//! its manifests — all planned and moved by `berth_client`.

use std::sync::Arc;

use berth_client::{Progress, PushedImage, RegistryClient};
use berth_oci::Reference;
use berth_policy::Event as HookEvent;
use berth_state::ImageRecord;

use super::{Auth, Images, parse_ref};
use crate::EngineError;
use crate::policy::image_event;

/// A push the hooks allowed, ready to run (see [`Images::push_request`]).
pub struct Push {
    images: Images,
    client: RegistryClient,
    reference: Reference,
    image: ImageRecord,
}

impl Images {
    /// Prepare a push of the local image `reference`: find it, ask the
    /// `pre-push` hooks, set up the client.
    pub async fn push_request(
        &self,
        reference: &str,
        auth: Option<Auth>,
    ) -> Result<Push, EngineError> {
        let reference = parse_ref(reference)?;
        let image = self
            .registry
            .state()
            .get_image(&reference.to_string())?
            .ok_or_else(|| {
                EngineError::not_found(format!("no local image {reference}; pull or tag one first"))
            })?;
        self.policy
            .check(HookEvent::PrePush(image_event(&reference, None)))
            .await?;
        let client = self.client_for(&reference, auth)?;
        Ok(Push {
            images: self.clone(),
            client,
            reference,
            image,
        })
    }
}

impl Push {
    /// The reference pushed to.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// Send the image, reporting each blob to `progress`; fires `post-push`
    /// once the registry has the manifest.
    pub async fn run(self, progress: Arc<dyn Progress>) -> Result<PushedImage, EngineError> {
        let Push {
            images,
            client,
            reference,
            image,
        } = self;
        let source = images.blobs();
        // Blobs of an image pulled from another repository of the same
        // registry can be mounted from there rather than sent again.
        let mount_from = image
            .origin
            .as_deref()
            .and_then(|o| o.parse::<Reference>().ok())
            .filter(|o| o.registry == reference.registry && o.repository != reference.repository)
            .map(|o| o.repository);
        let pushed = client
            .push_image(
                &reference,
                &image.manifest,
                &source,
                mount_from.as_deref(),
                progress,
            )
            .await
            .map_err(|e| EngineError::Upstream {
                code: "push_failed",
                message: e.to_string(),
            })?;
        images.policy.notify(HookEvent::PostPush(image_event(
            &reference,
            Some(pushed.digest.to_string()),
        )));
        Ok(pushed)
    }
}
