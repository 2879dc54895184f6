//! What plugins hand back to the host, at the level where berth judges it:
//! the input is one event (JSON, as `berth plugin test` and the docs write
//! it) and a verdict per hook (JSON of `Verdict`, the shape the host
//! converts each Wasm verdict into). The chain runs, merges patches and the
//! patched spec is applied; nothing panics, and a deny in enforce mode on a
//! pre-event always stops the chain.
#![no_main]

use std::sync::Arc;

use berth_policy::{Event, EventKind, Hook, HookChain, HookError, Mode, OnFailure, Verdict};
use libfuzzer_sys::fuzz_target;

struct Canned {
    name: String,
    answer: Result<Verdict, HookError>,
}

impl Hook for Canned {
    fn name(&self) -> &str {
        &self.name
    }
    fn subscriptions(&self) -> Vec<EventKind> {
        EventKind::ALL.to_vec()
    }
    fn handle(&self, _event: &Event) -> Result<Verdict, HookError> {
        self.answer.clone()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Records are separated by NUL: the event first, then one verdict per
    // hook; a record that is not a verdict makes its hook fail.
    let mut records = text.split('\0');
    let Some(event) = records.next() else {
        return;
    };
    let Ok(event) = Event::from_json(event) else {
        return;
    };
    let mut chain = HookChain::new();
    let mut enforced_deny = false;
    for (i, record) in records.take(16).enumerate() {
        let answer = serde_json::from_str::<Verdict>(record)
            .map_err(|e| HookError::new(format!("hook {i} answered {e}")));
        let mode = if i % 3 == 2 {
            Mode::Audit
        } else {
            Mode::Enforce
        };
        let on_failure = if i % 2 == 0 {
            OnFailure::Closed
        } else {
            OnFailure::Open
        };
        if mode == Mode::Enforce && matches!(answer, Ok(Verdict::Deny(_))) {
            enforced_deny = true;
        }
        chain.push(
            Arc::new(Canned {
                name: format!("hook-{i}"),
                answer,
            }),
            mode,
            on_failure,
        );
    }
    let outcome = chain.run(&event);
    if enforced_deny && event.kind().is_pre() {
        assert!(!outcome.allowed, "an enforced deny was not enforced");
    }
    if let Event::PreCreate(mut spec) = event {
        spec.apply(&outcome.patch);
    }
    let _ = serde_json::to_string(&outcome);
});
