//! The engine: berth's images (and, next, containers) as services over the
//! core crates, for every front end alike — the control API today, a
//! builder, a Docker Engine API or a CRI server tomorrow. It owns the
//! orchestration (pull = plan, fetch and unpack at once; load = store,
//! unpack, record), the lifecycle hooks that guard it, and one domain error,
//! [`EngineError`].
//!
//! It must never know HTTP: no axum, hyper or http types, no status codes.
//! A front end parses its request, calls a service, and renders the answer;
//! it maps [`EngineError`] to its own statuses in one place.
//!
//! ```no_run
//! # async fn demo(engine: &berth_engine::Engine) -> Result<(), berth_engine::EngineError> {
//! let images = engine.images();
//! let pull = images.pull_request("docker.io/library/busybox:1", None, None).await?;
//! let record = pull.run(std::sync::Arc::new(berth_client::NoProgress)).await?;
//! images.tag(&record.reference, "localhost/busybox:mine")?;
//! # Ok(()) }
//! ```

mod error;
pub mod images;
pub mod policy;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::EngineError;
pub use images::Images;

/// What the engine is made of; the daemon opens each part and hands it in.
pub struct EngineConfig {
    /// The content store and the image/tag database (shared with the
    /// registry endpoint).
    pub registry: berth_registry::Registry,
    /// Template for the registry clients of pulls and pushes.
    pub client: berth_client::ClientConfig,
    /// Unpacks images into snapshots (shared by chain ID).
    pub unpacker: berth_unpack::Unpacker,
    /// berthd's `--root`.
    pub root: PathBuf,
}

/// berth's engine. Services are reached through it: [`Engine::images`]
/// today; the containers service joins it beside `images`, sharing the
/// same stores and [`Engine::policy`].
pub struct Engine {
    images: Images,
    policy: Arc<policy::Policy>,
    root: PathBuf,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        let policy = Arc::new(policy::Policy::new());
        Engine {
            images: Images::new(
                config.registry,
                config.client,
                config.unpacker,
                policy.clone(),
            ),
            policy,
            root: config.root,
        }
    }

    /// The image service: pull, push, tag, remove, list, inspect, load,
    /// save, import, prune, mount.
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// The lifecycle hooks in force (replaced whenever plugins change).
    pub fn policy(&self) -> &Arc<policy::Policy> {
        &self.policy
    }

    /// berthd's root directory.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }
}
