//! The plugin host's records as the API shows them: `berth_api_types`'
//! mirrors, built field by field so a field added on one side and not the
//! other fails to compile here.

use berth_api_types as api;
use berth_plugins::{Access, Kind, PluginInfo, PluginSpec, PluginState};
use berth_policy::{Mode, OnFailure};

pub fn kind(k: Kind) -> api::PluginKind {
    match k {
        Kind::StorageBackend => api::PluginKind::StorageBackend,
        Kind::AuthProvider => api::PluginKind::AuthProvider,
        Kind::Scanner => api::PluginKind::Scanner,
        Kind::LifecycleHook => api::PluginKind::LifecycleHook,
    }
}

pub fn spec(s: PluginSpec) -> api::PluginSpec {
    let PluginSpec {
        name,
        kind: k,
        source,
        enabled,
        order,
        mode,
        on_failure,
        timeout_ms,
        memory_mib,
        config,
        grants,
    } = s;
    api::PluginSpec {
        name,
        kind: kind(k),
        source,
        enabled,
        order,
        mode: match mode {
            Mode::Enforce => api::PluginMode::Enforce,
            Mode::Audit => api::PluginMode::Audit,
        },
        on_failure: on_failure.map(|f| match f {
            OnFailure::Closed => api::OnFailure::Closed,
            OnFailure::Open => api::OnFailure::Open,
        }),
        timeout_ms,
        memory_mib,
        config,
        grants: api::PluginGrants {
            dirs: grants
                .dirs
                .into_iter()
                .map(|d| api::DirGrant {
                    host: d.host.display().to_string(),
                    guest: d.guest,
                    access: match d.access {
                        Access::Ro => api::DirAccess::Ro,
                        Access::Rw => api::DirAccess::Rw,
                    },
                })
                .collect(),
            env: grants.env,
            net: grants.net,
            dns: grants.dns,
        },
    }
}

pub fn info(i: PluginInfo) -> api::PluginInfo {
    let m = i.metrics;
    api::PluginInfo {
        name: i.name,
        kind: kind(i.kind),
        digest: i.digest,
        state: match i.state {
            PluginState::Enabled => api::PluginState::Enabled,
            PluginState::Disabled => api::PluginState::Disabled,
            PluginState::CutOff { until } => api::PluginState::CutOff { until },
            PluginState::Stuck { calls } => api::PluginState::Stuck {
                calls: calls as u64,
            },
        },
        cache: match i.cache {
            berth_plugins::CacheOutcome::Compiled => "compiled",
            berth_plugins::CacheOutcome::Hit => "hit",
        }
        .to_string(),
        subscriptions: i.subscriptions.iter().map(|e| e.to_string()).collect(),
        first_edition: i.first_edition,
        stuck_calls: i.stuck_calls as u64,
        spec: spec(i.spec),
        metrics: api::PluginMetrics {
            calls: m.calls,
            errors: m.errors,
            timeouts: m.timeouts,
            memory_limits: m.memory_limits,
            traps: m.traps,
            denials: m.denials,
            audit_denials: m.audit_denials,
            cut_offs: m.cut_offs,
            p50_us: m.p50_us,
            p99_us: m.p99_us,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_serializes_as_the_plugin_host_does() {
        let mut s = PluginSpec::new("deny-root", Kind::LifecycleHook, "/x.wasm");
        s.on_failure = Some(OnFailure::Open);
        s.mode = Mode::Audit;
        s.timeout_ms = Some(50);
        s.config = serde_json::json!({ "allow_label": "ok" });
        s.grants.dirs.push(berth_plugins::DirGrant {
            host: "/etc/berth".into(),
            guest: "/data".into(),
            access: Access::Rw,
        });
        s.grants.env.push("TZ".into());
        let core = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::to_string(&spec(s.clone())).unwrap(), core);
        // What the CLI sends, the daemon reads (it rejects unknown fields).
        let back: PluginSpec = serde_json::from_str(&core).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_plugin_record_serializes_as_the_plugin_host_does() {
        let record = PluginInfo {
            name: "deny-root".into(),
            kind: Kind::LifecycleHook,
            digest: "sha256:abc".into(),
            state: PluginState::CutOff {
                until: std::time::UNIX_EPOCH + std::time::Duration::from_secs(7),
            },
            cache: berth_plugins::CacheOutcome::Hit,
            subscriptions: vec![berth_policy::EventKind::PreCreate],
            first_edition: false,
            stuck_calls: 2,
            spec: PluginSpec::new("deny-root", Kind::LifecycleHook, "/x.wasm"),
            metrics: berth_plugins::MetricsSnapshot {
                calls: 3,
                errors: 1,
                timeouts: 0,
                memory_limits: 0,
                traps: 1,
                denials: 2,
                audit_denials: 0,
                cut_offs: 1,
                p50_us: Some(20),
                p99_us: None,
            },
        };
        let core = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::to_string(&info(record)).unwrap(), core);
        let stuck = PluginState::Stuck { calls: 4 };
        let mirror: api::PluginState =
            serde_json::from_str(&serde_json::to_string(&stuck).unwrap()).unwrap();
        assert_eq!(mirror, api::PluginState::Stuck { calls: 4 });
    }
}
