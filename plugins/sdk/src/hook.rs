//! Lifecycle hooks and policies: the [`Hook`] trait and [`export_hook!`](crate::export_hook).
//!
//! Implement only the events you care about; every handler defaults to `allow`. The SDK
//! answers the host's `subscriptions` call by finding out which handlers you overrode, so the
//! host never calls your plugin for the other events (see [`Hook::subscriptions`]).
//!
//! A hook exports the complete edition of the contract (`lifecycle` in `wit/hooks.wit`): it
//! sees `exec`, `cp` and `update` as well as image and container events, and every
//! security-relevant setting of a container. A policy about containers should judge all the
//! ways to the same result: a rule against root containers, say, also belongs in
//! [`Hook::pre_exec`] (`exec -u 0`).

use std::cell::Cell;

pub use crate::bindings::common::berth::plugin::types::Pair;
pub use crate::bindings::hook::exports::berth::plugin::lifecycle::{
    ContainerEvent, ContainerSpec, CopyDirection, CopyEvent, Event, EventKind, ExecEvent,
    ImageEvent, Limits, Mount, MountKind, Patch, UpdateEvent, Verdict,
};

impl EventKind {
    /// Every kind of event, in the WIT's order.
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
}

impl Event {
    /// The kind of this event.
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
}

impl Verdict {
    /// Stops the operation; `reason` is shown to the user, so say what is refused and how to
    /// get it accepted.
    pub fn deny(reason: impl Into<String>) -> Self {
        Verdict::Deny(reason.into())
    }
}

impl Limits {
    /// No limit set.
    pub fn none() -> Self {
        Limits {
            memory: None,
            memory_swap: None,
            memory_reservation: None,
            pids: None,
            cpus: None,
            cpu_shares: None,
            cpuset_cpus: None,
        }
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.memory_swap.is_none()
            && self.memory_reservation.is_none()
            && self.pids.is_none()
            && self.cpus.is_none()
            && self.cpu_shares.is_none()
            && self.cpuset_cpus.is_none()
    }
}

impl ContainerSpec {
    /// An empty spec: no name, root, no command, nothing set. Fill in what a test needs with
    /// struct update syntax (`ContainerSpec { uid: 0, ..ContainerSpec::empty() }`).
    pub fn empty() -> Self {
        ContainerSpec {
            name: String::new(),
            image: String::new(),
            image_digest: String::new(),
            user: String::new(),
            uid: 0,
            gid: 0,
            command: Vec::new(),
            env: Vec::new(),
            labels: Vec::new(),
            image_labels: Vec::new(),
            limits: Limits::none(),
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            no_new_privileges: false,
            seccomp_unconfined: false,
            network: String::new(),
            publish: Vec::new(),
            mounts: Vec::new(),
            read_only_rootfs: false,
            workdir: String::new(),
            hostname: None,
            ulimits: Vec::new(),
            tty: false,
            interactive: false,
        }
    }
}

impl ContainerEvent {
    /// An empty container event, for tests and samples.
    pub fn empty() -> Self {
        ContainerEvent {
            id: String::new(),
            name: String::new(),
            image: String::new(),
            labels: Vec::new(),
            exit_code: None,
        }
    }
}

impl ExecEvent {
    /// An empty exec event (root, no command), for tests and samples.
    pub fn empty() -> Self {
        ExecEvent {
            container: ContainerEvent::empty(),
            command: Vec::new(),
            env: Vec::new(),
            user: String::new(),
            uid: 0,
            gid: 0,
            workdir: None,
            tty: false,
            interactive: false,
            detach: false,
        }
    }
}

impl Patch {
    /// A patch that changes nothing; fill in what you change.
    pub fn new() -> Self {
        Patch {
            labels: Vec::new(),
            env: Vec::new(),
            limits: Limits::none(),
        }
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.env.is_empty() && self.limits.is_empty()
    }
}

impl Default for Patch {
    fn default() -> Self {
        Patch::new()
    }
}

/// The value of label `key`, if the list has it.
pub fn label<'a>(labels: &'a [Pair], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|pair| pair.key == key)
        .map(|pair| pair.value.as_str())
}

/// A lifecycle hook. Instances are created once (with `Default`) and reused for many events,
/// so a hook may keep caches in `Cell`/`RefCell` fields.
pub trait Hook {
    /// The events the host should send. The default finds the handlers this type overrides:
    /// it calls each handler once with an empty sample event while logging is muted, and a
    /// handler left at its default reports itself. Override this to declare the list
    /// yourself when a handler must not run on a sample (e.g. one that does costly work).
    fn subscriptions(&self) -> Vec<EventKind> {
        probe_subscriptions(self)
    }

    /// Judges one event. The default calls the handler for the event's kind; override it to
    /// handle every kind in one place (then declare [`subscriptions`](Hook::subscriptions)).
    fn handle(&self, event: &Event) -> Verdict {
        dispatch(self, event)
    }

    /// Before an image is pulled.
    fn pre_pull(&self, image: &ImageEvent) -> Verdict {
        let _ = image;
        not_overridden()
    }
    /// After an image was pulled.
    fn post_pull(&self, image: &ImageEvent) -> Verdict {
        let _ = image;
        not_overridden()
    }
    /// Before an image is pushed.
    fn pre_push(&self, image: &ImageEvent) -> Verdict {
        let _ = image;
        not_overridden()
    }
    /// After an image was pushed.
    fn post_push(&self, image: &ImageEvent) -> Verdict {
        let _ = image;
        not_overridden()
    }
    /// Before a container is created: the only event that may answer [`Verdict::Mutate`].
    fn pre_create(&self, spec: &ContainerSpec) -> Verdict {
        let _ = spec;
        not_overridden()
    }
    /// After a container started.
    fn post_start(&self, container: &ContainerEvent) -> Verdict {
        let _ = container;
        not_overridden()
    }
    /// After a container stopped (`exit_code` is set).
    fn post_stop(&self, container: &ContainerEvent) -> Verdict {
        let _ = container;
        not_overridden()
    }
    /// Before a container is removed.
    fn pre_remove(&self, container: &ContainerEvent) -> Verdict {
        let _ = container;
        not_overridden()
    }
    /// Before a command runs in a running container (`exec`); `uid` is the user it runs as.
    fn pre_exec(&self, exec: &ExecEvent) -> Verdict {
        let _ = exec;
        not_overridden()
    }
    /// Before files are copied into or out of a container (`cp`).
    fn pre_copy(&self, copy: &CopyEvent) -> Verdict {
        let _ = copy;
        not_overridden()
    }
    /// Before a container's limits change (`update`): `before` and `after` are its limits now
    /// and once updated.
    fn pre_update(&self, update: &UpdateEvent) -> Verdict {
        let _ = update;
        not_overridden()
    }
}

thread_local! {
    static DEFAULT_HANDLER_RAN: Cell<bool> = const { Cell::new(false) };
}

/// What every default handler does: allow, and tell a running probe it was not overridden.
fn not_overridden() -> Verdict {
    DEFAULT_HANDLER_RAN.with(|ran| ran.set(true));
    Verdict::Allow
}

/// Calls the handler for `event`.
pub fn dispatch<H: Hook + ?Sized>(hook: &H, event: &Event) -> Verdict {
    match event {
        Event::PrePull(image) => hook.pre_pull(image),
        Event::PostPull(image) => hook.post_pull(image),
        Event::PrePush(image) => hook.pre_push(image),
        Event::PostPush(image) => hook.post_push(image),
        Event::PreCreate(spec) => hook.pre_create(spec),
        Event::PostStart(container) => hook.post_start(container),
        Event::PostStop(container) => hook.post_stop(container),
        Event::PreRemove(container) => hook.pre_remove(container),
        Event::PreExec(exec) => hook.pre_exec(exec),
        Event::PreCopy(copy) => hook.pre_copy(copy),
        Event::PreUpdate(update) => hook.pre_update(update),
    }
}

/// The kinds whose handler `hook` overrides (see [`Hook::subscriptions`]).
pub fn probe_subscriptions<H: Hook + ?Sized>(hook: &H) -> Vec<EventKind> {
    crate::log::set_muted(true);
    let kinds = EventKind::ALL
        .into_iter()
        .filter(|&kind| {
            DEFAULT_HANDLER_RAN.with(|ran| ran.set(false));
            let _ = dispatch(hook, &sample_event(kind));
            !DEFAULT_HANDLER_RAN.with(Cell::get)
        })
        .collect();
    crate::log::set_muted(false);
    kinds
}

/// An empty event of `kind`, for probing.
fn sample_event(kind: EventKind) -> Event {
    let image = || ImageEvent {
        reference: String::new(),
        registry: String::new(),
        repository: String::new(),
        tag: None,
        digest: None,
    };
    match kind {
        EventKind::PrePull => Event::PrePull(image()),
        EventKind::PostPull => Event::PostPull(image()),
        EventKind::PrePush => Event::PrePush(image()),
        EventKind::PostPush => Event::PostPush(image()),
        EventKind::PreCreate => Event::PreCreate(ContainerSpec::empty()),
        EventKind::PostStart => Event::PostStart(ContainerEvent::empty()),
        EventKind::PostStop => Event::PostStop(ContainerEvent::empty()),
        EventKind::PreRemove => Event::PreRemove(ContainerEvent::empty()),
        EventKind::PreExec => Event::PreExec(ExecEvent::empty()),
        EventKind::PreCopy => Event::PreCopy(CopyEvent {
            container: ContainerEvent::empty(),
            direction: CopyDirection::IntoContainer,
            path: String::new(),
            running: false,
        }),
        EventKind::PreUpdate => Event::PreUpdate(UpdateEvent {
            container: ContainerEvent::empty(),
            before: Limits::none(),
            after: Limits::none(),
        }),
    }
}

/// Exports a [`Hook`] type as the plugin's `lifecycle-policy` world.
///
/// The type must implement `Default`; one instance serves every call. The argument is a
/// type name (an identifier), as wit-bindgen's export macros require.
/// ```no_run
/// use berth_plugin_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct AuditPulls;
///
/// impl Hook for AuditPulls {
///     fn post_pull(&self, image: &ImageEvent) -> Verdict {
///         info!("pulled {} ({:?})", image.reference, image.digest);
///         Verdict::Allow
///     }
/// }
///
/// berth_plugin_sdk::export_hook!(AuditPulls);
/// ```
#[macro_export]
macro_rules! export_hook {
    ($ty:ident) => {
        const _: () = {
            thread_local! {
                static __BERTH_HOOK: $ty = <$ty as ::core::default::Default>::default();
            }


            struct __BerthHookExport;

            impl $crate::bindings::hook::exports::berth::plugin::lifecycle::Guest for __BerthHookExport {
                fn subscriptions() -> ::std::vec::Vec<$crate::hook::EventKind> {
                    __BERTH_HOOK.with(|hook| $crate::hook::Hook::subscriptions(hook))
                }

                fn handle(event: $crate::hook::Event) -> $crate::hook::Verdict {
                    __BERTH_HOOK.with(|hook| $crate::hook::Hook::handle(hook, &event))
                }
            }

            // Native builds (unit tests) skip the exports: their wasm symbol names do not link

            // into a native cdylib.

            #[cfg(target_arch = "wasm32")]

            $crate::bindings::hook::__export_hook_world!(
                __BerthHookExport with_types_in $crate::bindings::hook
            );
            // Natively, keep the plugin type "used" so its code is still type- and
            // lint-checked, and unit tests see no dead-code noise.
            #[cfg(not(target_arch = "wasm32"))]
            const _: () = {
                let _ = <__BerthHookExport as $crate::bindings::hook::exports::berth::plugin::lifecycle::Guest>::handle;
            };
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct OnlyCreate;

    impl Hook for OnlyCreate {
        fn pre_create(&self, spec: &ContainerSpec) -> Verdict {
            if spec.uid == 0 {
                Verdict::deny("root")
            } else {
                Verdict::Allow
            }
        }
    }

    #[derive(Default)]
    struct PullAndRemove;

    impl Hook for PullAndRemove {
        fn pre_pull(&self, _image: &ImageEvent) -> Verdict {
            Verdict::Allow
        }
        fn pre_remove(&self, _container: &ContainerEvent) -> Verdict {
            Verdict::Allow
        }
    }

    #[test]
    fn subscriptions_are_the_overridden_handlers() {
        assert_eq!(OnlyCreate.subscriptions(), vec![EventKind::PreCreate]);
        assert_eq!(
            PullAndRemove.subscriptions(),
            vec![EventKind::PrePull, EventKind::PreRemove]
        );
    }

    #[test]
    fn dispatch_calls_the_handler_and_defaults_allow() {
        let verdict = dispatch(&OnlyCreate, &sample_event(EventKind::PreCreate));
        assert_eq!(verdict_text(&verdict), "deny: root");
        let verdict = dispatch(&OnlyCreate, &sample_event(EventKind::PostStop));
        assert_eq!(verdict_text(&verdict), "allow");
    }

    fn verdict_text(verdict: &Verdict) -> String {
        match verdict {
            Verdict::Allow => "allow".into(),
            Verdict::Deny(reason) => format!("deny: {reason}"),
            Verdict::Mutate(_) => "mutate".into(),
        }
    }

    #[test]
    fn label_lookup_and_empty_patch() {
        let labels = vec![Pair {
            key: "a".into(),
            value: "1".into(),
        }];
        assert_eq!(label(&labels, "a"), Some("1"));
        assert_eq!(label(&labels, "b"), None);
        assert!(Patch::new().is_empty());
    }
}
