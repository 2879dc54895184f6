//! The hook chain: hooks in the operator's order, each enforcing or only
//! auditing, each failing open or closed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Event, EventKind, Patch, Verdict};

/// Why a hook could not give a verdict (it trapped, timed out, was cut off,
/// or answered something the event does not allow).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    pub message: String,
}

impl HookError {
    pub fn new(message: impl Into<String>) -> HookError {
        HookError {
            message: message.into(),
        }
    }
}

/// A lifecycle hook: native, or a plugin behind the host's adapter.
pub trait Hook: Send + Sync {
    /// The name the operator knows it by; used in denials and logs.
    fn name(&self) -> &str;
    /// The events this hook wants; asked once, when it joins a chain.
    fn subscriptions(&self) -> Vec<EventKind>;
    /// Judges one event.
    fn handle(&self, event: &Event) -> Result<Verdict, HookError>;
}

/// Whether a hook's verdicts count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Denials stop the operation; patches are applied.
    #[default]
    Enforce,
    /// Verdicts are logged and noted in the outcome, never enforced.
    Audit,
}

/// What a hook's failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// A failure denies (the safe default for policy).
    #[default]
    Closed,
    /// A failure is logged and the hook skipped.
    Open,
}

/// Who denied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    pub hook: String,
    pub reason: String,
}

/// Something a hook said or did that was recorded but not enforced: an
/// audit-mode verdict, a failure skipped because the hook fails open, or a
/// deny on a `post-*` event (which cannot undo anything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditNote {
    pub hook: String,
    pub note: String,
}

/// The chain's answer to one event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// False only when an enforced hook denied (or failed closed) on a
    /// `pre-*` event.
    pub allowed: bool,
    pub denied_by: Option<Denial>,
    /// The merged pre-create patch (empty when none); apply it with
    /// [`crate::ContainerSpec::apply`].
    pub patch: Patch,
    pub audit_notes: Vec<AuditNote>,
}

struct Link {
    hook: Arc<dyn Hook>,
    mode: Mode,
    on_failure: OnFailure,
    subscriptions: Vec<EventKind>,
}

/// Hooks in order. Build it once per configuration change (cheap: it only
/// holds `Arc`s) and run it per event.
#[derive(Default)]
pub struct HookChain {
    links: Vec<Link>,
}

impl HookChain {
    pub fn new() -> HookChain {
        HookChain::default()
    }

    /// Appends a hook; its subscriptions are asked now, once.
    pub fn push(&mut self, hook: Arc<dyn Hook>, mode: Mode, on_failure: OnFailure) {
        let subscriptions = hook.subscriptions();
        self.links.push(Link {
            hook,
            mode,
            on_failure,
            subscriptions,
        });
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Whether any hook subscribed to `kind`: when none did, an operation
    /// need not even build its event.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.links.iter().any(|l| l.subscriptions.contains(&kind))
    }

    /// The hook names in order.
    pub fn names(&self) -> Vec<String> {
        self.links
            .iter()
            .map(|l| l.hook.name().to_owned())
            .collect()
    }

    /// Runs every subscribed hook in order until an enforced deny on a
    /// `pre-*` event stops the chain.
    pub fn run(&self, event: &Event) -> Outcome {
        let kind = event.kind();
        let mut outcome = Outcome {
            allowed: true,
            ..Outcome::default()
        };
        for link in &self.links {
            if !link.subscriptions.contains(&kind) {
                continue;
            }
            let name = link.hook.name();
            let verdict = match link.hook.handle(event) {
                Ok(Verdict::Mutate(_)) if kind != EventKind::PreCreate => Err(HookError::new(
                    format!("hook answered mutate to a {kind} event; only pre-create may mutate"),
                )),
                other => other,
            };
            let verdict = match verdict {
                Ok(v) => v,
                Err(e) => {
                    let failed = format!("hook failed: {e}");
                    if link.mode == Mode::Audit || link.on_failure == OnFailure::Open {
                        tracing::warn!(hook = name, event = %kind, error = %e, "hook failed; skipped");
                        outcome.note(name, format!("{failed} (skipped)"));
                        continue;
                    }
                    tracing::warn!(hook = name, event = %kind, error = %e, "hook failed; failing closed");
                    Verdict::Deny(format!("policy hook {name} failed: {e}"))
                }
            };
            match (verdict, link.mode) {
                (Verdict::Allow, _) => {}
                (Verdict::Deny(reason), Mode::Audit) => {
                    tracing::info!(hook = name, event = %kind, %reason, "audit: hook would deny");
                    outcome.note(name, format!("would deny: {reason}"));
                }
                (Verdict::Mutate(patch), Mode::Audit) => {
                    outcome.note(name, format!("would change: {}", describe(&patch)));
                }
                (Verdict::Mutate(patch), Mode::Enforce) => outcome.patch.merge(&patch),
                (Verdict::Deny(reason), Mode::Enforce) if !kind.is_pre() => {
                    tracing::info!(hook = name, event = %kind, %reason, "hook denied a post event");
                    outcome.note(name, format!("denied after the fact: {reason}"));
                }
                (Verdict::Deny(reason), Mode::Enforce) => {
                    tracing::info!(hook = name, event = %kind, %reason, "hook denied");
                    outcome.allowed = false;
                    outcome.denied_by = Some(Denial {
                        hook: name.to_owned(),
                        reason,
                    });
                    return outcome;
                }
            }
        }
        outcome
    }
}

impl Outcome {
    fn note(&mut self, hook: &str, note: String) {
        self.audit_notes.push(AuditNote {
            hook: hook.to_owned(),
            note,
        });
    }
}

fn describe(patch: &Patch) -> String {
    serde_json::to_string(patch).unwrap_or_else(|_| format!("{patch:?}"))
}
