//! Lifecycle hooks on the real paths: the current [`HookChain`] (rebuilt
//! whenever plugins change) and how an operation fires an event at it.
//! A `pre-*` deny becomes [`EngineError::Denied`], naming the hook and its reason;
//! `post-*` events are fired without holding the operation up.

use std::sync::{Arc, RwLock};

use berth_oci::Reference;
use berth_policy::{Event, HookChain, ImageEvent, Outcome};

use crate::EngineError;

/// The hooks in force. Cheap to read on every operation.
#[derive(Default)]
pub struct Policy {
    chain: RwLock<Arc<HookChain>>,
}

impl Policy {
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Puts a new chain in force; operations already running finish with
    /// the chain they started with.
    pub fn set(&self, chain: HookChain) {
        let mut guard = match self.chain.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(chain);
    }

    /// Whether any hook in force subscribed to `kind`.
    pub fn wants(&self, kind: berth_policy::EventKind) -> bool {
        self.current().wants(kind)
    }

    pub fn current(&self) -> Arc<HookChain> {
        match self.chain.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fires a `pre-*` event and waits for the verdict: `Err` when a
    /// hook denied, else the outcome (with any pre-create patch).
    pub async fn check(&self, event: Event) -> Result<Outcome, EngineError> {
        let chain = self.current();
        let kind = event.kind();
        if !chain.wants(kind) {
            return Ok(allowed());
        }
        // Plugin calls may take up to their deadline: not on an async worker.
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || chain.run(&event))
            .await
            .map_err(|e| EngineError::internal(format!("running the {kind} hooks: {e}")))?;
        tracing::debug!(event = %kind, elapsed = ?started.elapsed(), "hooks judged");
        log_notes(&outcome);
        if let Some(denial) = outcome.denied_by.as_ref().filter(|_| !outcome.allowed) {
            tracing::info!(hook = %denial.hook, event = %kind, reason = %denial.reason, "denied by policy");
            return Err(EngineError::Denied {
                event: kind.to_string(),
                plugin: denial.hook.clone(),
                reason: denial.reason.clone(),
            });
        }
        Ok(outcome)
    }

    /// Fires a `post-*` event in the background.
    pub fn notify(&self, event: Event) {
        let chain = self.current();
        if !chain.wants(event.kind()) {
            return;
        }
        tokio::task::spawn_blocking(move || log_notes(&chain.run(&event)));
    }
}

fn allowed() -> Outcome {
    Outcome {
        allowed: true,
        ..Outcome::default()
    }
}

fn log_notes(outcome: &Outcome) {
    for note in &outcome.audit_notes {
        tracing::warn!(hook = %note.hook, note = %note.note, "policy note");
    }
}

/// The image event for `reference`, with `digest` once it is known.
pub fn image_event(reference: &Reference, digest: Option<String>) -> ImageEvent {
    ImageEvent {
        reference: reference.to_string(),
        registry: reference.registry.clone(),
        repository: reference.repository.clone(),
        tag: reference.tag.clone(),
        digest: digest.or_else(|| reference.digest.as_ref().map(|d| d.to_string())),
    }
}
