//! Debug-level timing of the steps of attach and detach, as events with
//! target `berth_network::timing` and fields `step` and `us`: what
//! `examples/bridge_cost.rs` collects, and what `berthd --log
//! berth_network::timing=debug` shows per container.

use std::time::Instant;

/// Report that `step` took the time since `since`.
pub(crate) fn step(step: &'static str, since: Instant) {
    let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(target: "berth_network::timing", step, us, "network step");
}
