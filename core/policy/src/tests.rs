//! Chain semantics with native test hooks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::*;

/// A hook that answers the same thing every time and counts its calls.
struct Fixed {
    name: &'static str,
    kinds: Vec<EventKind>,
    answer: Result<Verdict, HookError>,
    calls: AtomicUsize,
}

impl Fixed {
    fn new(name: &'static str, answer: Result<Verdict, HookError>) -> Arc<Fixed> {
        Arc::new(Fixed {
            name,
            kinds: EventKind::ALL.to_vec(),
            answer,
            calls: AtomicUsize::new(0),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Hook for Fixed {
    fn name(&self) -> &str {
        self.name
    }
    fn subscriptions(&self) -> Vec<EventKind> {
        self.kinds.clone()
    }
    fn handle(&self, _: &Event) -> Result<Verdict, HookError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answer.clone()
    }
}

fn pre_create() -> Event {
    Event::PreCreate(ContainerSpec {
        name: "web".into(),
        ..ContainerSpec::default()
    })
}

fn post_start() -> Event {
    Event::PostStart(ContainerEvent::default())
}

fn labels(pairs: &[(&str, &str)]) -> Patch {
    Patch {
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Patch::default()
    }
}

#[test]
fn empty_chain_allows() {
    let outcome = HookChain::new().run(&pre_create());
    assert!(outcome.allowed);
    assert!(outcome.denied_by.is_none());
    assert!(outcome.patch.is_empty());
}

#[test]
fn first_enforced_deny_stops_the_chain() {
    let a = Fixed::new("a", Ok(Verdict::Allow));
    let b = Fixed::new("b", Ok(Verdict::Deny("no".into())));
    let c = Fixed::new("c", Ok(Verdict::Deny("also no".into())));
    let mut chain = HookChain::new();
    for h in [&a, &b, &c] {
        chain.push(h.clone(), Mode::Enforce, OnFailure::Closed);
    }
    let outcome = chain.run(&pre_create());
    assert!(!outcome.allowed);
    assert_eq!(
        outcome.denied_by,
        Some(Denial {
            hook: "b".into(),
            reason: "no".into()
        })
    );
    assert_eq!((a.calls(), b.calls(), c.calls()), (1, 1, 0));
}

#[test]
fn audit_deny_is_noted_not_enforced() {
    let audit = Fixed::new("audit", Ok(Verdict::Deny("would be bad".into())));
    let after = Fixed::new("after", Ok(Verdict::Allow));
    let mut chain = HookChain::new();
    chain.push(audit.clone(), Mode::Audit, OnFailure::Closed);
    chain.push(after.clone(), Mode::Enforce, OnFailure::Closed);
    let outcome = chain.run(&pre_create());
    assert!(outcome.allowed);
    assert_eq!(outcome.audit_notes.len(), 1);
    assert_eq!(outcome.audit_notes[0].hook, "audit");
    assert!(outcome.audit_notes[0].note.contains("would be bad"));
    assert_eq!(after.calls(), 1);
}

#[test]
fn audit_mutate_is_not_applied() {
    let audit = Fixed::new("audit", Ok(Verdict::Mutate(labels(&[("a", "1")]))));
    let mut chain = HookChain::new();
    chain.push(audit, Mode::Audit, OnFailure::Closed);
    let outcome = chain.run(&pre_create());
    assert!(outcome.patch.is_empty());
    assert!(outcome.audit_notes[0].note.contains("would change"));
}

#[test]
fn failure_closed_denies_with_the_error() {
    let broken = Fixed::new("broken", Err(HookError::new("trapped: unreachable")));
    let mut chain = HookChain::new();
    chain.push(broken, Mode::Enforce, OnFailure::Closed);
    let outcome = chain.run(&pre_create());
    assert!(!outcome.allowed);
    let denial = outcome.denied_by.unwrap();
    assert_eq!(denial.hook, "broken");
    assert!(denial.reason.contains("trapped: unreachable"), "{denial:?}");
}

#[test]
fn failure_open_is_skipped_and_noted() {
    let broken = Fixed::new("broken", Err(HookError::new("timed out")));
    let next = Fixed::new("next", Ok(Verdict::Deny("next decides".into())));
    let mut chain = HookChain::new();
    chain.push(broken, Mode::Enforce, OnFailure::Open);
    chain.push(next.clone(), Mode::Enforce, OnFailure::Closed);
    let outcome = chain.run(&pre_create());
    assert_eq!(outcome.denied_by.unwrap().hook, "next");
    assert!(outcome.audit_notes[0].note.contains("timed out"));
}

#[test]
fn audit_failure_never_denies() {
    let broken = Fixed::new("broken", Err(HookError::new("boom")));
    let mut chain = HookChain::new();
    chain.push(broken, Mode::Audit, OnFailure::Closed);
    assert!(chain.run(&pre_create()).allowed);
}

#[test]
fn patches_merge_in_order_later_wins() {
    let first = Fixed::new(
        "first",
        Ok(Verdict::Mutate(labels(&[("a", "1"), ("b", "1")]))),
    );
    let second = Fixed::new("second", Ok(Verdict::Mutate(labels(&[("b", "2")]))));
    let mut chain = HookChain::new();
    chain.push(first, Mode::Enforce, OnFailure::Closed);
    chain.push(second, Mode::Enforce, OnFailure::Closed);
    let outcome = chain.run(&pre_create());
    assert!(outcome.allowed);
    assert_eq!(outcome.patch, labels(&[("a", "1"), ("b", "2")]));
}

#[test]
fn mutate_outside_pre_create_is_a_hook_error() {
    let mutator = Fixed::new("mutator", Ok(Verdict::Mutate(labels(&[("a", "1")]))));
    let mut chain = HookChain::new();
    chain.push(mutator.clone(), Mode::Enforce, OnFailure::Closed);
    let pull = Event::PrePull(ImageEvent::default());
    let outcome = chain.run(&pull);
    assert!(!outcome.allowed, "a closed hook's error denies");
    assert!(
        outcome
            .denied_by
            .unwrap()
            .reason
            .contains("only pre-create")
    );
    assert!(outcome.patch.is_empty());

    let mut open = HookChain::new();
    open.push(mutator, Mode::Enforce, OnFailure::Open);
    let outcome = open.run(&pull);
    assert!(outcome.allowed);
    assert!(outcome.patch.is_empty());
    assert!(outcome.audit_notes[0].note.contains("only pre-create"));
}

#[test]
fn only_subscribed_hooks_are_called() {
    let hook = Arc::new(Fixed {
        name: "pulls-only",
        kinds: vec![EventKind::PrePull],
        answer: Ok(Verdict::Deny("no".into())),
        calls: AtomicUsize::new(0),
    });
    let mut chain = HookChain::new();
    chain.push(hook.clone(), Mode::Enforce, OnFailure::Closed);
    assert!(chain.run(&pre_create()).allowed);
    assert_eq!(hook.calls(), 0);
    assert!(!chain.run(&Event::PrePull(ImageEvent::default())).allowed);
    assert_eq!(hook.calls(), 1);
}

#[test]
fn deny_on_post_event_is_noted_not_enforced() {
    let hook = Fixed::new("late", Ok(Verdict::Deny("too late".into())));
    let after = Fixed::new("after", Ok(Verdict::Allow));
    let mut chain = HookChain::new();
    chain.push(hook, Mode::Enforce, OnFailure::Closed);
    chain.push(after.clone(), Mode::Enforce, OnFailure::Closed);
    let outcome = chain.run(&post_start());
    assert!(outcome.allowed);
    assert!(outcome.denied_by.is_none());
    assert!(outcome.audit_notes[0].note.contains("too late"));
    assert_eq!(after.calls(), 1);
}

#[test]
fn names_keep_order() {
    let mut chain = HookChain::new();
    chain.push(
        Fixed::new("z", Ok(Verdict::Allow)),
        Mode::Enforce,
        OnFailure::Closed,
    );
    chain.push(
        Fixed::new("a", Ok(Verdict::Allow)),
        Mode::Enforce,
        OnFailure::Closed,
    );
    assert_eq!(chain.names(), vec!["z", "a"]);
}

#[test]
fn wants_only_what_some_hook_subscribed_to() {
    let mut chain = HookChain::new();
    assert!(!chain.wants(EventKind::PreCreate));
    let pulls = Arc::new(Fixed {
        name: "pulls",
        kinds: vec![EventKind::PrePull],
        answer: Ok(Verdict::Allow),
        calls: AtomicUsize::new(0),
    });
    chain.push(pulls, Mode::Enforce, OnFailure::Closed);
    assert!(chain.wants(EventKind::PrePull));
    assert!(!chain.wants(EventKind::PreCreate));
    assert!(!chain.wants(EventKind::PostStop));
}
