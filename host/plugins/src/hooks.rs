//! Lifecycle-hook plugins as [`berth_policy::Hook`]s, and the chain of the
//! enabled ones. A plugin built against the complete edition of the
//! contract (`lifecycle`) gets berth's events as they are; one built against
//! the first edition (`hooks`, 0.1.0) gets them narrowed to what that
//! edition knows, and is never sent the events it did not have.

use std::sync::Arc;

use berth_policy::{
    ContainerEvent, ContainerSpec, CopyDirection, Event, EventKind, Hook, HookChain, HookError,
    ImageEvent, Limits, Mode, Mount, MountKind, Outcome, Patch, Verdict,
};

use crate::bindings::hook::exports::berth::plugin::hooks as first;
use crate::bindings::policy::exports::berth::plugin::lifecycle as wit;
use crate::bindings::types::Pair;
use crate::bounds;
use crate::plugin::{Exports, Plugin};
use crate::spec::Kind;
use crate::{PluginError, PluginManager};

/// One hook plugin, as the chain sees it.
pub struct PluginHook {
    plugin: Arc<Plugin>,
}

impl PluginHook {
    /// Calls the plugin and counts its denials (as audit denials when the
    /// plugin is in audit mode). Errors are typed; the chain turns them into
    /// a deny or a skip per `on_failure`.
    pub fn judge(&self, event: &Event) -> Result<Verdict, PluginError> {
        let name = self.plugin.name();
        let verdict = if self.plugin.first_edition() {
            // A first-edition hook never subscribed to the newer events.
            let Some(wit_event) = to_first(event) else {
                return Ok(Verdict::Allow);
            };
            let verdict = self.plugin.call(move |store, exports| {
                Box::pin(async move {
                    match exports {
                        Exports::Hook(h) => {
                            h.berth_plugin_hooks().call_handle(store, &wit_event).await
                        }
                        _ => Err(wasmtime::format_err!("not a first-edition hook")),
                    }
                })
            })?;
            from_first(name, verdict)
        } else {
            let wit_event = to_wit(event);
            let verdict = self.plugin.call(move |store, exports| {
                Box::pin(async move {
                    match exports {
                        Exports::Policy(h) => {
                            h.berth_plugin_lifecycle()
                                .call_handle(store, &wit_event)
                                .await
                        }
                        _ => Err(wasmtime::format_err!("not a lifecycle-policy hook")),
                    }
                })
            })?;
            from_wit(name, verdict)
        };
        if let Verdict::Deny(_) = verdict {
            self.plugin
                .metrics
                .denial(self.plugin.spec.mode == Mode::Audit);
        }
        if matches!(verdict, Verdict::Mutate(_)) && event.kind() != EventKind::PreCreate {
            let error = PluginError::Contract {
                plugin: self.plugin.name().to_owned(),
                message: format!(
                    "it answered mutate to a {} event; only pre-create may mutate",
                    event.kind()
                ),
            };
            self.plugin.metrics.error(&error);
            return Err(error);
        }
        Ok(verdict)
    }
}

impl Hook for PluginHook {
    fn name(&self) -> &str {
        self.plugin.name()
    }

    fn subscriptions(&self) -> Vec<EventKind> {
        self.plugin.subscriptions.clone()
    }

    fn handle(&self, event: &Event) -> Result<Verdict, HookError> {
        self.judge(event).map_err(|e| HookError::new(e.to_string()))
    }
}

impl PluginManager {
    /// The enabled hook plugins in order (`order`, then name), each with its
    /// mode and `on_failure`. Cheap: build one per event, or after changes.
    pub fn hook_chain(&self) -> HookChain {
        let mut chain = HookChain::new();
        self.extend_hook_chain(&mut chain);
        chain
    }

    /// Appends the enabled hook plugins to a chain that may already hold
    /// native hooks.
    pub fn extend_hook_chain(&self, chain: &mut HookChain) {
        for plugin in self.enabled_of(Kind::LifecycleHook) {
            let mode = plugin.spec.mode;
            let on_failure = plugin.spec.on_failure();
            chain.push(Arc::new(PluginHook { plugin }), mode, on_failure);
        }
    }

    /// Runs the hook chain on one event.
    pub fn run_hooks(&self, event: &Event) -> Outcome {
        self.hook_chain().run(event)
    }

    /// One hook plugin by name (for `berth plugin test` and direct calls).
    pub fn hook(&self, name: &str) -> Result<PluginHook, PluginError> {
        Ok(PluginHook {
            plugin: self.get(name, Kind::LifecycleHook)?,
        })
    }
}

/// The subscriptions of a complete-edition hook, each kind once.
pub(crate) fn kinds(plugin: &str, kinds: Vec<wit::EventKind>) -> Vec<EventKind> {
    dedup(bounds::list(
        plugin,
        "subscriptions",
        kinds,
        bounds::ENTRIES,
        |k| match k {
            wit::EventKind::PrePull => EventKind::PrePull,
            wit::EventKind::PostPull => EventKind::PostPull,
            wit::EventKind::PrePush => EventKind::PrePush,
            wit::EventKind::PostPush => EventKind::PostPush,
            wit::EventKind::PreCreate => EventKind::PreCreate,
            wit::EventKind::PostStart => EventKind::PostStart,
            wit::EventKind::PostStop => EventKind::PostStop,
            wit::EventKind::PreRemove => EventKind::PreRemove,
            wit::EventKind::PreExec => EventKind::PreExec,
            wit::EventKind::PreCopy => EventKind::PreCopy,
            wit::EventKind::PreUpdate => EventKind::PreUpdate,
        },
    ))
}

/// The subscriptions of a first-edition hook.
pub(crate) fn first_edition_kinds(plugin: &str, kinds: Vec<first::EventKind>) -> Vec<EventKind> {
    dedup(bounds::list(
        plugin,
        "subscriptions",
        kinds,
        bounds::ENTRIES,
        |k| match k {
            first::EventKind::PrePull => EventKind::PrePull,
            first::EventKind::PostPull => EventKind::PostPull,
            first::EventKind::PrePush => EventKind::PrePush,
            first::EventKind::PostPush => EventKind::PostPush,
            first::EventKind::PreCreate => EventKind::PreCreate,
            first::EventKind::PostStart => EventKind::PostStart,
            first::EventKind::PostStop => EventKind::PostStop,
            first::EventKind::PreRemove => EventKind::PreRemove,
        },
    ))
}

fn dedup(mut kinds: Vec<EventKind>) -> Vec<EventKind> {
    kinds.sort();
    kinds.dedup();
    kinds
}

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<Pair> {
    map.iter()
        .map(|(k, v)| Pair {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn image(e: &ImageEvent) -> wit::ImageEvent {
    wit::ImageEvent {
        reference: e.reference.clone(),
        registry: e.registry.clone(),
        repository: e.repository.clone(),
        tag: e.tag.clone(),
        digest: e.digest.clone(),
    }
}

fn limits(l: &Limits) -> wit::Limits {
    wit::Limits {
        memory: l.memory,
        memory_swap: l.memory_swap,
        memory_reservation: l.memory_reservation,
        pids: l.pids,
        cpus: l.cpus,
        cpu_shares: l.cpu_shares,
        cpuset_cpus: l.cpuset_cpus.clone(),
    }
}

fn mount(m: &Mount) -> wit::Mount {
    wit::Mount {
        kind: match m.kind {
            MountKind::Bind => wit::MountKind::Bind,
            MountKind::Volume => wit::MountKind::Volume,
            MountKind::Tmpfs => wit::MountKind::Tmpfs,
        },
        source: m.source.clone(),
        target: m.target.clone(),
        read_only: m.read_only,
        anonymous: m.anonymous,
    }
}

fn spec(s: &ContainerSpec) -> wit::ContainerSpec {
    wit::ContainerSpec {
        name: s.name.clone(),
        image: s.image.clone(),
        image_digest: s.image_digest.clone(),
        user: s.user.clone(),
        uid: s.uid,
        gid: s.gid,
        command: s.command.clone(),
        env: s.env.clone(),
        labels: pairs(&s.labels),
        image_labels: pairs(&s.image_labels),
        limits: limits(&s.limits),
        privileged: s.privileged,
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        no_new_privileges: s.no_new_privileges,
        seccomp_unconfined: s.seccomp_unconfined,
        network: s.network.clone(),
        publish: s.publish.clone(),
        mounts: s.mounts.iter().map(mount).collect(),
        read_only_rootfs: s.read_only_rootfs,
        workdir: s.workdir.clone(),
        hostname: s.hostname.clone(),
        ulimits: s.ulimits.clone(),
        tty: s.tty,
        interactive: s.interactive,
    }
}

fn container(e: &ContainerEvent) -> wit::ContainerEvent {
    wit::ContainerEvent {
        id: e.id.clone(),
        name: e.name.clone(),
        image: e.image.clone(),
        labels: pairs(&e.labels),
        exit_code: e.exit_code,
    }
}

pub(crate) fn to_wit(event: &Event) -> wit::Event {
    match event {
        Event::PrePull(e) => wit::Event::PrePull(image(e)),
        Event::PostPull(e) => wit::Event::PostPull(image(e)),
        Event::PrePush(e) => wit::Event::PrePush(image(e)),
        Event::PostPush(e) => wit::Event::PostPush(image(e)),
        Event::PreCreate(s) => wit::Event::PreCreate(spec(s)),
        Event::PostStart(e) => wit::Event::PostStart(container(e)),
        Event::PostStop(e) => wit::Event::PostStop(container(e)),
        Event::PreRemove(e) => wit::Event::PreRemove(container(e)),
        Event::PreExec(e) => wit::Event::PreExec(wit::ExecEvent {
            container: container(&e.container),
            command: e.command.clone(),
            env: e.env.clone(),
            user: e.user.clone(),
            uid: e.uid,
            gid: e.gid,
            workdir: e.workdir.clone(),
            tty: e.tty,
            interactive: e.interactive,
            detach: e.detach,
        }),
        Event::PreCopy(e) => wit::Event::PreCopy(wit::CopyEvent {
            container: container(&e.container),
            direction: match e.direction {
                CopyDirection::IntoContainer => wit::CopyDirection::IntoContainer,
                CopyDirection::OutOfContainer => wit::CopyDirection::OutOfContainer,
            },
            path: e.path.clone(),
            running: e.running,
        }),
        Event::PreUpdate(e) => wit::Event::PreUpdate(wit::UpdateEvent {
            container: container(&e.container),
            before: limits(&e.before),
            after: limits(&e.after),
        }),
    }
}

/// The event as the first edition knows it; `None` for an event it did not
/// have.
pub(crate) fn to_first(event: &Event) -> Option<first::Event> {
    let image = |e: &ImageEvent| first::ImageEvent {
        reference: e.reference.clone(),
        registry: e.registry.clone(),
        repository: e.repository.clone(),
        tag: e.tag.clone(),
        digest: e.digest.clone(),
    };
    let container = |e: &ContainerEvent| first::ContainerEvent {
        id: e.id.clone(),
        name: e.name.clone(),
        image: e.image.clone(),
        labels: pairs(&e.labels),
        exit_code: e.exit_code,
    };
    Some(match event {
        Event::PrePull(e) => first::Event::PrePull(image(e)),
        Event::PostPull(e) => first::Event::PostPull(image(e)),
        Event::PrePush(e) => first::Event::PrePush(image(e)),
        Event::PostPush(e) => first::Event::PostPush(image(e)),
        Event::PreCreate(s) => first::Event::PreCreate(first::ContainerSpec {
            name: s.name.clone(),
            image: s.image.clone(),
            image_digest: s.image_digest.clone(),
            user: s.user.clone(),
            uid: s.uid,
            gid: s.gid,
            command: s.command.clone(),
            env: s.env.clone(),
            labels: pairs(&s.labels),
            limits: first::Limits {
                memory: s.limits.memory,
                pids: s.limits.pids,
                cpus: s.limits.cpus,
                cpu_shares: s.limits.cpu_shares,
            },
            privileged: s.privileged,
            cap_add: s.cap_add.clone(),
            network: s.network.clone(),
            mounts: s
                .mounts
                .iter()
                .filter_map(Mount::to_volume_string)
                .collect(),
            read_only_rootfs: s.read_only_rootfs,
        }),
        Event::PostStart(e) => first::Event::PostStart(container(e)),
        Event::PostStop(e) => first::Event::PostStop(container(e)),
        Event::PreRemove(e) => first::Event::PreRemove(container(e)),
        Event::PreExec(_) | Event::PreCopy(_) | Event::PreUpdate(_) => return None,
    })
}

/// A deny reason or a patch from a plugin, cut to what berth keeps.
fn deny(reason: String) -> Verdict {
    Verdict::Deny(bounds::text(reason, bounds::MESSAGE))
}

fn patch(plugin: &str, labels: Vec<Pair>, env: Vec<String>, limits: Limits) -> Verdict {
    Verdict::Mutate(Patch {
        labels: bounds::list(plugin, "patch labels", labels, bounds::ENTRIES, |p| {
            (
                bounds::text(p.key, bounds::NAME),
                bounds::text(p.value, bounds::VALUE),
            )
        })
        .into_iter()
        .collect(),
        env: bounds::list(plugin, "patch env", env, bounds::ENTRIES, |e| {
            bounds::text(e, bounds::VALUE)
        }),
        limits: Limits {
            cpuset_cpus: limits.cpuset_cpus.map(|c| bounds::text(c, bounds::NAME)),
            ..limits
        },
    })
}

pub(crate) fn from_wit(plugin: &str, v: wit::Verdict) -> Verdict {
    match v {
        wit::Verdict::Allow => Verdict::Allow,
        wit::Verdict::Deny(reason) => deny(reason),
        wit::Verdict::Mutate(p) => patch(
            plugin,
            p.labels,
            p.env,
            Limits {
                memory: p.limits.memory,
                memory_swap: p.limits.memory_swap,
                memory_reservation: p.limits.memory_reservation,
                pids: p.limits.pids,
                cpus: p.limits.cpus,
                cpu_shares: p.limits.cpu_shares,
                cpuset_cpus: p.limits.cpuset_cpus,
            },
        ),
    }
}

pub(crate) fn from_first(plugin: &str, v: first::Verdict) -> Verdict {
    match v {
        first::Verdict::Allow => Verdict::Allow,
        first::Verdict::Deny(reason) => deny(reason),
        first::Verdict::Mutate(p) => patch(
            plugin,
            p.labels,
            p.env,
            Limits {
                memory: p.limits.memory,
                pids: p.limits.pids,
                cpus: p.limits.cpus,
                cpu_shares: p.limits.cpu_shares,
                ..Limits::default()
            },
        ),
    }
}
