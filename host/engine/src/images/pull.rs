//! A pull: download and unpack at once. `berth_client` plans it (one GET of
//! the top-level manifest, one of the platform's manifest for an index);
//! the config is fetched first (it is small) to learn the diffIDs; then the
//! layers download while each one is unpacked as soon as it is stored and
//! its parent is unpacked.

use std::sync::Arc;

use berth_client::{ClientError, Platform, Progress, PullPlan, RegistryClient};
use berth_oci::Reference;
use berth_policy::Event as HookEvent;
use berth_state::ImageRecord;

use super::store::{self, NewImage};
use super::{Auth, Images, parse_ref};
use crate::EngineError;
use crate::policy::image_event;

pub(crate) fn pull_err(e: ClientError) -> EngineError {
    match e {
        ClientError::NoMatchingPlatform { .. } => EngineError::NotFound {
            code: "no_matching_platform",
            message: format!("{e}; pick one with --platform"),
        },
        e => EngineError::Upstream {
            code: "pull_failed",
            message: e.to_string(),
        },
    }
}

/// A pull the hooks allowed, ready to run: [`Images::pull_request`] checks
/// everything that can be checked before a byte moves, so a front end can
/// answer a refusal at once and stream only a pull that starts.
pub struct Pull {
    images: Images,
    client: RegistryClient,
    reference: Reference,
    platform: Platform,
}

impl Images {
    /// Prepare a pull of `reference` for `platform` (the host's when
    /// `None`): parse, ask the `pre-pull` hooks, set up the client.
    pub async fn pull_request(
        &self,
        reference: &str,
        platform: Option<&str>,
        auth: Option<Auth>,
    ) -> Result<Pull, EngineError> {
        let reference = parse_ref(reference)?;
        let platform = match platform {
            Some(p) => p
                .parse::<Platform>()
                .map_err(|e| EngineError::invalid(e.to_string()))?,
            None => Platform::host(),
        };
        self.policy
            .check(HookEvent::PrePull(image_event(&reference, None)))
            .await?;
        let client = self.client_for(&reference, auth)?;
        Ok(Pull {
            images: self.clone(),
            client,
            reference,
            platform,
        })
    }

    /// Pull `reference` and wait for it: [`pull_request`](Self::pull_request)
    /// then [`Pull::run`].
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        auth: Option<Auth>,
        progress: Arc<dyn Progress>,
    ) -> Result<ImageRecord, EngineError> {
        self.pull_request(reference, platform, auth)
            .await?
            .run(progress)
            .await
    }
}

impl Pull {
    /// Download, unpack and record the image, reporting each blob to
    /// `progress`; fires `post-pull` once it is recorded.
    pub async fn run(self, progress: Arc<dyn Progress>) -> Result<ImageRecord, EngineError> {
        let Pull {
            images,
            client,
            reference,
            platform,
        } = self;
        let plan = client
            .plan_pull(&reference, &platform)
            .await
            .map_err(pull_err)?;
        let record = fetch_and_unpack(&images, &client, &reference, &plan, progress).await?;
        images.policy.notify(HookEvent::PostPull(image_event(
            &reference,
            Some(record.manifest.to_string()),
        )));
        Ok(record)
    }
}

async fn fetch_and_unpack(
    images: &Images,
    client: &RegistryClient,
    reference: &Reference,
    plan: &PullPlan,
    progress: Arc<dyn Progress>,
) -> Result<ImageRecord, EngineError> {
    let sink = images.blobs();
    // The config first: its diffIDs say what each layer unpacks to. The
    // fetch below then finds it present.
    client
        .pull_blob(
            &plan.repository,
            &plan.config.digest,
            plan.config.size,
            &sink,
            &progress,
        )
        .await
        .map_err(pull_err)?;
    let layers = store::layers_of(
        images,
        &reference.to_string(),
        &plan.config.digest,
        &plan.layers,
    )
    .await?;
    let download = async {
        let result = client.fetch_pull(plan, &sink, progress.clone()).await;
        // Wake an unpack still waiting for a blob that will never come.
        sink.finish();
        result.map_err(pull_err)
    };
    let unpack = async {
        images
            .unpacker
            .unpack(&layers, |d| {
                let sink = sink.clone();
                async move { sink.wait_for(&d).await }
            })
            .await
            .map_err(store::unpack_err)
    };
    let (pulled, unpacked) = tokio::try_join!(download, unpack)?;
    store::record_unpacked(
        images,
        NewImage {
            reference: reference.to_string(),
            digest: pulled.digest.clone(),
            media_type: pulled
                .index
                .as_ref()
                .map_or(pulled.manifest.media_type.clone(), |i| i.media_type.clone()),
            platform_manifest: pulled
                .index
                .as_ref()
                .map(|_| pulled.manifest.digest.clone()),
            config: pulled.config.clone(),
            layers: pulled.layers.clone(),
            origin: Some(reference.to_string()),
        },
        unpacked,
    )
}
