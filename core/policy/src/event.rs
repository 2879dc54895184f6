//! Lifecycle events and verdicts, mirroring `wit/hooks.wit`'s complete
//! edition (interface `lifecycle`) field for field; the host narrows them to
//! the first edition (`hooks`) for plugins built against it.
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
    PreExec,
    PreCopy,
    PreUpdate,
}

impl EventKind {
    /// Every kind, in the WIT's order.
    pub const ALL: [EventKind; 11] = [
        EventKind::PrePull,
        EventKind::PostPull,
        EventKind::PrePush,
        EventKind::PostPush,
        EventKind::PreCreate,
        EventKind::PostStart,
        EventKind::PostStop,
        EventKind::PreRemove,
        EventKind::PreExec,
        EventKind::PreCopy,
        EventKind::PreUpdate,
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
            EventKind::PreExec => "pre-exec",
            EventKind::PreCopy => "pre-copy",
            EventKind::PreUpdate => "pre-update",
        }
    }

    /// Whether the event comes before the operation, so a deny stops it.
    /// A `post-*` verdict is recorded but cannot undo anything.
    pub fn is_pre(self) -> bool {
        matches!(
            self,
            EventKind::PrePull
                | EventKind::PrePush
                | EventKind::PreCreate
                | EventKind::PreRemove
                | EventKind::PreExec
                | EventKind::PreCopy
                | EventKind::PreUpdate
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
    /// Memory plus swap in bytes (`--memory-swap`).
    pub memory_swap: Option<u64>,
    /// Soft memory limit in bytes (`--memory-reservation`).
    pub memory_reservation: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
    /// CPU quota in CPUs, e.g. 1.5.
    pub cpus: Option<f64>,
    /// Relative CPU weight (`--cpu-shares`).
    pub cpu_shares: Option<u64>,
    /// The CPUs the container may use (`--cpuset-cpus`, e.g. `0-2,4`).
    pub cpuset_cpus: Option<String>,
}

impl Limits {
    /// `other`'s `Some` values replace ours.
    pub fn overlay(&mut self, other: &Limits) {
        fn set<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
        set(&mut self.memory, &other.memory);
        set(&mut self.memory_swap, &other.memory_swap);
        set(&mut self.memory_reservation, &other.memory_reservation);
        set(&mut self.pids, &other.pids);
        set(&mut self.cpus, &other.cpus);
        set(&mut self.cpu_shares, &other.cpu_shares);
        set(&mut self.cpuset_cpus, &other.cpuset_cpus);
    }

    pub fn is_empty(&self) -> bool {
        self == &Limits::default()
    }
}

/// What kind of file system a [`Mount`] puts in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// A host path (`-v /host:/ctr`, `--mount type=bind`).
    #[default]
    Bind,
    /// A berth volume (`-v NAME:/ctr`, `-v /ctr`, `--mount type=volume`).
    Volume,
    /// An in-memory file system (`--tmpfs`, `--mount type=tmpfs`).
    Tmpfs,
}

/// One mount a container asks for, as berth will mount it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct Mount {
    pub kind: MountKind,
    /// The host path (bind), the volume's name (volume) or empty (tmpfs).
    pub source: String,
    /// The path inside the container.
    pub target: String,
    pub read_only: bool,
    /// A volume created for this container alone.
    pub anonymous: bool,
}

impl Mount {
    /// The first edition's text form, `SOURCE:TARGET[:ro]`; `None` for a
    /// tmpfs, which that edition did not list.
    pub fn to_volume_string(&self) -> Option<String> {
        if self.kind == MountKind::Tmpfs {
            return None;
        }
        let ro = if self.read_only { ":ro" } else { "" };
        Some(if self.anonymous {
            format!("{}{ro}", self.target)
        } else {
            format!("{}:{}{ro}", self.source, self.target)
        })
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
    /// `--label`s and what earlier hooks' patches set: the labels of the
    /// people who run the container. Never the image's: an image would
    /// otherwise grant itself a policy's opt-out label.
    pub labels: BTreeMap<String, String>,
    /// The image's own `LABEL`s, chosen by whoever built it.
    pub image_labels: BTreeMap<String, String>,
    pub limits: Limits,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `none`, `host`, `bridge` or a network name.
    pub network: String,
    /// `-p` as given: `[IP:]HOST:CONTAINER[/udp]`.
    pub publish: Vec<String>,
    /// `-v`, `--mount` and `--tmpfs`, parsed.
    pub mounts: Vec<Mount>,
    pub read_only_rootfs: bool,
    /// `-w` or the image's; empty for `/`.
    pub workdir: String,
    pub hostname: Option<String>,
    /// `--ulimit` as given: `NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
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

/// A command about to run in a running container (`exec`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct ExecEvent {
    pub container: ContainerEvent,
    pub command: Vec<String>,
    /// `-e` entries (the container's environment is inherited too).
    pub env: Vec<String>,
    /// `-u` as given; empty for the container's own user.
    pub user: String,
    /// The user ID the command runs as (`-u` resolved, or the container's).
    pub uid: u32,
    pub gid: u32,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
}

/// Which way a `cp` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyDirection {
    #[default]
    IntoContainer,
    OutOfContainer,
}

/// Files about to be copied into or out of a container (`cp`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct CopyEvent {
    pub container: ContainerEvent,
    pub direction: CopyDirection,
    /// The absolute path inside the container.
    pub path: String,
    pub running: bool,
}

/// A container's limits about to change (`update`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct UpdateEvent {
    pub container: ContainerEvent,
    /// The limits now.
    pub before: Limits,
    /// The limits after the update (`None` where it lifts one).
    pub after: Limits,
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
    PreExec(ExecEvent),
    PreCopy(CopyEvent),
    PreUpdate(UpdateEvent),
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
            Event::PreExec(_) => EventKind::PreExec,
            Event::PreCopy(_) => EventKind::PreCopy,
            Event::PreUpdate(_) => EventKind::PreUpdate,
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
    fn exec_copy_and_update_events_parse_from_short_json() {
        let exec = Event::from_json(
            r#"{"pre-exec": {"container": {"name": "web"}, "user": "0", "command": ["sh"]}}"#,
        )
        .unwrap();
        assert_eq!(exec.kind(), EventKind::PreExec);
        assert!(exec.kind().is_pre());
        let copy =
            Event::from_json(r#"{"pre-copy": {"direction": "out-of-container", "path": "/etc"}}"#)
                .unwrap();
        let Event::PreCopy(c) = &copy else {
            panic!("wrong kind: {copy:?}");
        };
        assert_eq!(c.direction, CopyDirection::OutOfContainer);
        let update =
            Event::from_json(r#"{"pre-update": {"before": {"memory": 1}, "after": {}}}"#).unwrap();
        let Event::PreUpdate(u) = &update else {
            panic!("wrong kind: {update:?}");
        };
        assert_eq!((u.before.memory, u.after.memory), (Some(1), None));
        assert_eq!(EventKind::ALL.len(), 11);
    }

    #[test]
    fn mounts_keep_the_first_edition_text_form() {
        let bind = Mount {
            kind: MountKind::Bind,
            source: "/srv".into(),
            target: "/data".into(),
            read_only: true,
            anonymous: false,
        };
        assert_eq!(bind.to_volume_string().as_deref(), Some("/srv:/data:ro"));
        let anonymous = Mount {
            kind: MountKind::Volume,
            source: "abc".into(),
            target: "/cache".into(),
            anonymous: true,
            ..Mount::default()
        };
        assert_eq!(anonymous.to_volume_string().as_deref(), Some("/cache"));
        let tmpfs = Mount {
            kind: MountKind::Tmpfs,
            target: "/run".into(),
            ..Mount::default()
        };
        assert_eq!(tmpfs.to_volume_string(), None);
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
