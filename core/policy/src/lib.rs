//! Lifecycle policy: the events berth fires around the operations that
//! matter, the verdicts hooks answer with, and the [`HookChain`] that runs
//! hooks in the operator's order. Native types mirror `wit/hooks.wit`; this
//! crate knows nothing of Wasm (the plugin host adapts hook plugins to
//! [`Hook`]).
//!
//! Chain semantics:
//! - hooks run in the order they were pushed, and only for the events they
//!   subscribed to;
//! - [`Mode::Enforce`]: the first deny on a `pre-*` event stops the chain
//!   ([`Outcome::denied_by`]); [`Mode::Audit`]: verdicts are logged and
//!   noted in [`Outcome::audit_notes`] but never enforced;
//! - a failing hook denies when it fails [`OnFailure::Closed`] and is
//!   skipped (and noted) when it fails [`OnFailure::Open`]; an audit hook's
//!   failure never denies;
//! - `pre-create` patches merge in order, a later hook winning per key; a
//!   mutate on any other event is the hook's error;
//! - a deny on a `post-*` event is noted; it cannot undo anything.
//!
//! The JSON form of events is described in [`event`].
//!
//! ```
//! use std::sync::Arc;
//! use berth_policy::*;
//!
//! struct NoRoot;
//! impl Hook for NoRoot {
//!     fn name(&self) -> &str { "no-root" }
//!     fn subscriptions(&self) -> Vec<EventKind> { vec![EventKind::PreCreate] }
//!     fn handle(&self, event: &Event) -> Result<Verdict, HookError> {
//!         Ok(match event {
//!             Event::PreCreate(spec) if spec.uid == 0 => Verdict::Deny("runs as root".into()),
//!             _ => Verdict::Allow,
//!         })
//!     }
//! }
//!
//! let mut chain = HookChain::new();
//! chain.push(Arc::new(NoRoot), Mode::Enforce, OnFailure::Closed);
//! let event = Event::from_json(r#"{"pre-create": {"name": "web", "uid": 0}}"#).unwrap();
//! let outcome = chain.run(&event);
//! assert!(!outcome.allowed);
//! assert_eq!(outcome.denied_by.unwrap().hook, "no-root");
//! ```

mod chain;
pub mod event;

pub use chain::{AuditNote, Denial, Hook, HookChain, HookError, Mode, OnFailure, Outcome};
pub use event::{
    ContainerEvent, ContainerSpec, CopyDirection, CopyEvent, Event, EventKind, ExecEvent,
    ImageEvent, Limits, Mount, MountKind, Patch, UpdateEvent, Verdict,
};

#[cfg(test)]
mod tests;
