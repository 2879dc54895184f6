//! An in-process conformance suite for the registry endpoint, modelled on
//! the OCI distribution-spec conformance tests (pull, push, content
//! discovery, content management) plus the habits of real clients seen in
//! peers.md. Each test serves the router on its own loopback socket with a
//! fresh root and drives it with reqwest, so headers, chunked bodies and
//! status codes are exactly what a client on the wire sees.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

/// The blob store is the native one here; `conformance_dir_storage.rs`
/// runs the same suite over the dir-storage plugin.
const STORAGE_PLUGIN: bool = false;

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
