//! The registry conformance suite over a storage plugin. An in-process conformance suite for the registry endpoint, modelled on
//! the OCI distribution-spec conformance tests (pull, push, content
//! discovery, content management) plus the habits of real clients seen in
//! peers.md. Each test serves the router on its own loopback socket with a
//! fresh root and drives it with reqwest, so headers, chunked bodies and
//! status codes are exactly what a client on the wire sees.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

/// The same suite as `conformance.rs`, with the registry's blobs kept by
/// the dir-storage Wasm plugin behind the content store.
const STORAGE_PLUGIN: bool = true;

#[path = "conformance/clients.rs"]
mod clients;
#[path = "conformance/common.rs"]
mod common;
#[path = "conformance/discovery.rs"]
mod discovery;
#[path = "conformance/errors.rs"]
mod errors;
#[path = "conformance/management.rs"]
mod management;
#[path = "conformance/pull.rs"]
mod pull;
#[path = "conformance/push.rs"]
mod push;
