//! Lifecycle-hook plugins as [`berth_policy::Hook`]s, and the chain of the
//! enabled ones.

use std::sync::Arc;

use berth_policy::{
    ContainerEvent, ContainerSpec, Event, EventKind, Hook, HookChain, HookError, ImageEvent,
    Limits, Mode, Outcome, Patch, Verdict,
};

use crate::bindings::hook::exports::berth::plugin::hooks as wit;
use crate::bindings::types::Pair;
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
        let wit_event = to_wit(event);
        let verdict = self.plugin.call(|store, exports| match exports {
            Exports::Hook(h) => h.berth_plugin_hooks().call_handle(store, &wit_event),
            _ => Err(wasmtime::format_err!("not a hook")),
        })?;
        let verdict = from_wit(verdict);
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

pub(crate) fn event_kind(k: wit::EventKind) -> EventKind {
    match k {
        wit::EventKind::PrePull => EventKind::PrePull,
        wit::EventKind::PostPull => EventKind::PostPull,
        wit::EventKind::PrePush => EventKind::PrePush,
        wit::EventKind::PostPush => EventKind::PostPush,
        wit::EventKind::PreCreate => EventKind::PreCreate,
        wit::EventKind::PostStart => EventKind::PostStart,
        wit::EventKind::PostStop => EventKind::PostStop,
        wit::EventKind::PreRemove => EventKind::PreRemove,
    }
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
        pids: l.pids,
        cpus: l.cpus,
        cpu_shares: l.cpu_shares,
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
        limits: limits(&s.limits),
        privileged: s.privileged,
        cap_add: s.cap_add.clone(),
        network: s.network.clone(),
        mounts: s.mounts.clone(),
        read_only_rootfs: s.read_only_rootfs,
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
    }
}

pub(crate) fn from_wit(v: wit::Verdict) -> Verdict {
    match v {
        wit::Verdict::Allow => Verdict::Allow,
        wit::Verdict::Deny(reason) => Verdict::Deny(reason),
        wit::Verdict::Mutate(p) => Verdict::Mutate(Patch {
            labels: p.labels.into_iter().map(|p| (p.key, p.value)).collect(),
            env: p.env,
            limits: Limits {
                memory: p.limits.memory,
                pids: p.limits.pids,
                cpus: p.limits.cpus,
                cpu_shares: p.limits.cpu_shares,
            },
        }),
    }
}
