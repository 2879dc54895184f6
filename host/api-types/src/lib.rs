//! The wire types of berthd's control API (`/v1/...`): request bodies,
//! query strings and response bodies, shared by the daemon (`berth-api`)
//! and the CLI (`berth`), so neither side builds JSON by hand or reads it
//! by string keys, and a renamed field fails to compile on both sides.
//!
//! This crate owns the JSON shapes only. It must never hold logic of the
//! daemon (parsing `-p` specs, resolving health checks...) or depend on
//! anything but serde: the CLI links it. With the `openapi` feature, every
//! type also derives a `utoipa::ToSchema`, from which `berth-api` builds
//! the OpenAPI document served at `/v1/openapi.json`.
//!
//! ```
//! use berth_api_types::{RunRequest, RunResponse};
//!
//! let req = RunRequest { image: "alpine".into(), detach: true, ..Default::default() };
//! let body = serde_json::to_string(&req).unwrap();
//! assert!(body.contains("\"image\":\"alpine\""));
//! let answer: RunResponse = serde_json::from_str(r#"{"id":"abc","name":"c1"}"#).unwrap();
//! assert_eq!(answer.name, "c1");
//! ```

pub mod containers;
mod error;
pub mod images;
pub mod networks;
pub mod plugins;
mod progress;
pub mod system;
pub mod volumes;

pub use containers::*;
pub use error::ErrorBody;
pub use images::*;
pub use networks::*;
pub use plugins::*;
pub use progress::Event;
pub use system::*;
pub use volumes::*;

#[cfg(test)]
mod tests;
