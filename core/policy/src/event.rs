//! Lifecycle events and verdicts, mirroring `wit/hooks.wit` field for field.
//!
//! The JSON form (what `berth plugin test --event EVENT.json` reads) is
//! serde's externally tagged enum with the WIT's kebab-case names:
//!
//! ```json
//! {"pre-create": {"name": "web", "image": "busybox", "uid": 0,
//!                 "labels": {"team": "infra"}, "limits": {"memory": 67108864}}}
//! ```
//!
//! Every field except the variant itself may be left out and takes its
//! empty value (`""`, `0`, `[]`, `{}`, `null`), so a test event says only
//! what it is about.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The kinds of event a hook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    PrePull,
    PostPull,
    PrePush,
    PostPush,
    PreCreate,
    PostStart,
    PostStop,
    PreRemove,
}

impl EventKind {
    /// Every kind, in the WIT's order.
    pub const ALL: [EventKind; 8] = [
        EventKind::PrePull,
        EventKind::PostPull,
        EventKind::PrePush,
        EventKind::PostPush,
        EventKind::PreCreate,
        EventKind::PostStart,
        EventKind::PostStop,
        EventKind::PreRemove,
    ];

    /// The WIT name (`pre-create`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PrePull => "pre-pull",
            EventKind::PostPull => "post-pull",
            EventKind::PrePush => "pre-push",
            EventKind::PostPush => "post-push",
            EventKind::PreCreate => "pre-create",
            EventKind::PostStart => "post-start",
            EventKind::PostStop => "post-stop",
            EventKind::PreRemove => "pre-remove",
        }
    }

    /// Whether the event comes before the operation, so a deny stops it.
    /// A `post-*` verdict is recorded but cannot undo anything.
    pub fn is_pre(self) -> bool {
        matches!(
            self,
            EventKind::PrePull | EventKind::PrePush | EventKind::PreCreate | EventKind::PreRemove
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image operation (pull or push).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct ImageEvent {
    /// The normalised reference (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The registry host (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// The repository (`library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    /// The manifest digest, when known (always after a pull or push).
    pub digest: Option<String>,
}

/// Resource limits; `None` is unlimited (or the daemon's default).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
    /// CPU quota in CPUs, e.g. 1.5.
    pub cpus: Option<f64>,
    /// Relative CPU weight (`--cpu-shares`).
    pub cpu_shares: Option<u64>,
}

impl Limits {
    /// `other`'s `Some` values replace ours.
    pub fn overlay(&mut self, other: &Limits) {
        if other.memory.is_some() {
            self.memory = other.memory;
        }
        if other.pids.is_some() {
            self.pids = other.pids;
        }
        if other.cpus.is_some() {
            self.cpus = other.cpus;
        }
        if other.cpu_shares.is_some() {
            self.cpu_shares = other.cpu_shares;
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &Limits::default()
    }
}

/// A container about to be created, after the image's defaults were applied.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub image_digest: String,
    /// The user as given (`-u`) or from the image; empty means root.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub command: Vec<String>,
    /// `KEY=VALUE` entries, image environment included.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub limits: Limits,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    /// `none`, `host`, `bridge` or a network name.
    pub network: String,
    /// `SOURCE:TARGET[:ro]`.
    pub mounts: Vec<String>,
    pub read_only_rootfs: bool,
}

impl ContainerSpec {
    /// Applies a pre-create patch: labels and environment entries added or
    /// replaced by key, limits replaced where the patch sets them.
    pub fn apply(&mut self, patch: &Patch) {
        for (k, v) in &patch.labels {
            self.labels.insert(k.clone(), v.clone());
        }
        for entry in &patch.env {
            let key = env_key(entry);
            match self.env.iter_mut().find(|e| env_key(e) == key) {
                Some(existing) => existing.clone_from(entry),
                None => self.env.push(entry.clone()),
            }
        }
        self.limits.overlay(&patch.limits);
    }
}

/// A container that exists.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct ContainerEvent {
    /// The container ID (64 hex characters).
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// The exit code, for `post-stop`.
    pub exit_code: Option<i32>,
}

/// What happened or is about to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    PrePull(ImageEvent),
    PostPull(ImageEvent),
    PrePush(ImageEvent),
    PostPush(ImageEvent),
    PreCreate(ContainerSpec),
    PostStart(ContainerEvent),
    PostStop(ContainerEvent),
    PreRemove(ContainerEvent),
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::PrePull(_) => EventKind::PrePull,
            Event::PostPull(_) => EventKind::PostPull,
            Event::PrePush(_) => EventKind::PrePush,
            Event::PostPush(_) => EventKind::PostPush,
            Event::PreCreate(_) => EventKind::PreCreate,
            Event::PostStart(_) => EventKind::PostStart,
            Event::PostStop(_) => EventKind::PostStop,
            Event::PreRemove(_) => EventKind::PreRemove,
        }
    }

    /// Parses the JSON form described in this module's documentation.
    pub fn from_json(json: &str) -> Result<Event, crate::HookError> {
        serde_json::from_str(json).map_err(|e| {
            crate::HookError::new(format!(
                "event JSON is invalid: {e}; write one event as {{\"pre-create\": {{\"uid\": 0, ...}}}} \
                 with a kind of {}",
                EventKind::ALL.map(EventKind::as_str).join(", ")
            ))
        })
    }
}

/// The changes a `pre-create` hook may make; empty fields change nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct Patch {
    /// Labels to add or replace.
    pub labels: BTreeMap<String, String>,
    /// `KEY=VALUE` entries to add or replace.
    pub env: Vec<String>,
    /// Limits to set.
    pub limits: Limits,
}

impl Patch {
    /// Merges a later patch into this one; the later one wins per key.
    pub fn merge(&mut self, later: &Patch) {
        for (k, v) in &later.labels {
            self.labels.insert(k.clone(), v.clone());
        }
        for entry in &later.env {
            let key = env_key(entry);
            self.env.retain(|e| env_key(e) != key);
            self.env.push(entry.clone());
        }
        self.limits.overlay(&later.limits);
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.env.is_empty() && self.limits.is_empty()
    }
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Allow,
    /// Stop the operation (for `pre-*` events), with a reason for the user.
    Deny(String),
    /// Go on with these changes (`pre-create` only).
    Mutate(Patch),
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_json_event_parses_with_defaults() {
        let event =
            Event::from_json(r#"{"pre-create": {"name": "web", "uid": 0, "labels": {"a": "b"}}}"#)
                .unwrap();
        let Event::PreCreate(spec) = &event else {
            panic!("wrong kind: {event:?}");
        };
        assert_eq!(spec.name, "web");
        assert_eq!(spec.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(event.kind(), EventKind::PreCreate);
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn bad_event_json_names_the_kinds() {
        let err = Event::from_json(r#"{"pre-crate": {}}"#).unwrap_err();
        assert!(err.to_string().contains("pre-create"), "{err}");
        let err = Event::from_json(r#"{"pre-create": {"uidd": 0}}"#).unwrap_err();
        assert!(err.to_string().contains("uidd"), "{err}");
    }

    #[test]
    fn patch_merge_later_wins_per_key() {
        let mut p = Patch {
            env: vec!["A=1".into(), "B=1".into()],
            limits: Limits {
                memory: Some(1),
                pids: Some(10),
                ..Limits::default()
            },
            ..Patch::default()
        };
        p.labels.insert("x".into(), "1".into());
        let mut later = Patch {
            env: vec!["A=2".into()],
            limits: Limits {
                memory: Some(2),
                ..Limits::default()
            },
            ..Patch::default()
        };
        later.labels.insert("x".into(), "2".into());
        p.merge(&later);
        assert_eq!(p.labels["x"], "2");
        assert_eq!(p.env, vec!["B=1".to_string(), "A=2".to_string()]);
        assert_eq!(p.limits.memory, Some(2));
        assert_eq!(p.limits.pids, Some(10));
    }

    #[test]
    fn spec_apply_replaces_env_by_key() {
        let mut spec = ContainerSpec {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..ContainerSpec::default()
        };
        let patch = Patch {
            env: vec!["A=2".into(), "C=3".into()],
            ..Patch::default()
        };
        spec.apply(&patch);
        assert_eq!(spec.env, vec!["PATH=/bin", "A=2", "C=3"]);
    }
}
