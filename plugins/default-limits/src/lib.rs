//! `default-limits` — a lifecycle hook that gives containers created without a memory or pids
//! limit the operator's defaults. Limits the user set (`-m`, `--pids-limit`) are left alone,
//! and so is a later `update` that changes a limit; an `update` that lifts one (`--memory -1`,
//! `--pids-limit 0`) is refused, since it would undo what this hook ensures.
//!
//! Events: `pre-create` (answers `mutate` with the missing limits, or `allow`) and `pre-update`
//! (`deny` when the memory or pids limit would go, else `allow`).
//!
//! Configuration (`[plugin.config]`):
//! - `memory`: bytes as a number, or a size string such as `"256m"`, `"1g"`, `"512MiB"`
//!   (units k, m, g, t; powers of 1024, as Docker's `-m`). Default `"256m"`.
//! - `pids`: the maximum number of processes. Default `512`.
//!
//! ```toml
//! [[plugin]]
//! name = "default-limits"
//! kind = "lifecycle-hook"
//! source = "default_limits.wasm"
//! [plugin.config]
//! memory = "512m"
//! pids = 256
//! ```

mod size;

use berth_plugin_sdk::CachedConfig;
use berth_plugin_sdk::prelude::*;

pub use size::{SizeError, parse_size};

/// 256 MiB.
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// 512 processes.
pub const DEFAULT_PIDS: i64 = 512;

/// The configuration table as written: `memory` may be a number or a string.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    memory: Option<Size>,
    pids: Option<i64>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// The defaults, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Memory limit in bytes.
    pub memory: u64,
    /// Process limit.
    pub pids: i64,
}

impl Defaults {
    /// Validates a configuration JSON table (`{}` gives the built-in defaults).
    pub fn from_json(json: &str) -> Result<Defaults, String> {
        let raw: RawConfig = berth_plugin_sdk::parse_config(json).map_err(|err| err.to_string())?;
        Defaults::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Defaults, String> {
        let memory = match raw.memory {
            None => DEFAULT_MEMORY,
            Some(Size::Bytes(bytes)) => bytes,
            Some(Size::Text(text)) => {
                parse_size(&text).map_err(|err| format!("config `memory`: {err}"))?
            }
        };
        if memory == 0 {
            return Err("config `memory` must be more than 0 bytes".to_owned());
        }
        let pids = raw.pids.unwrap_or(DEFAULT_PIDS);
        if pids <= 0 {
            return Err(format!("config `pids` must be at least 1, not {pids}"));
        }
        Ok(Defaults { memory, pids })
    }
}

/// The verdict for one container: `mutate` with the limits it lacks, or `allow`.
pub fn judge(spec: &ContainerSpec, defaults: Defaults) -> Verdict {
    let mut patch = Patch::new();
    if spec.limits.memory.is_none() {
        patch.limits.memory = Some(defaults.memory);
    }
    if spec.limits.pids.is_none() {
        patch.limits.pids = Some(defaults.pids);
    }
    if patch.is_empty() {
        Verdict::Allow
    } else {
        Verdict::Mutate(patch)
    }
}

/// The verdict for an `update`: refused when it would leave the container without a memory or
/// pids limit it had.
pub fn judge_update(update: &UpdateEvent) -> Verdict {
    let mut lifted = Vec::new();
    if update.before.memory.is_some() && update.after.memory.is_none() {
        lifted.push("memory");
    }
    if update.before.pids.is_some() && update.after.pids.is_none() {
        lifted.push("pids");
    }
    if lifted.is_empty() {
        return Verdict::Allow;
    }
    Verdict::deny(format!(
        "the update would lift the {} limit of container {:?}; policy default-limits keeps \
         every container limited. Set a new limit instead (e.g. `update --memory 1g`, \
         `--pids-limit 1024`)",
        lifted.join(" and "),
        update.container.name
    ))
}

#[derive(Default)]
struct DefaultLimits {
    config: CachedConfig<RawConfig>,
}

impl Hook for DefaultLimits {
    fn pre_create(&self, spec: &ContainerSpec) -> Verdict {
        let defaults = self
            .config
            .get()
            .map_err(|err| err.to_string())
            .and_then(|raw| Defaults::from_raw(raw.clone()));
        match defaults {
            Ok(defaults) => judge(spec, defaults),
            // A broken configuration is the operator's to fix; refusing makes it visible at
            // once instead of silently running containers without limits.
            Err(err) => Verdict::deny(format!("policy default-limits: {err}")),
        }
    }

    fn pre_update(&self, update: &UpdateEvent) -> Verdict {
        judge_update(update)
    }
}

berth_plugin_sdk::export_hook!(DefaultLimits);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(memory: Option<u64>, pids: Option<i64>) -> ContainerSpec {
        ContainerSpec {
            name: "job".into(),
            image: "busybox".into(),
            uid: 1000,
            gid: 1000,
            limits: Limits {
                memory,
                pids,
                ..Limits::none()
            },
            network: "none".into(),
            ..ContainerSpec::empty()
        }
    }

    fn update(before: (Option<u64>, Option<i64>), after: (Option<u64>, Option<i64>)) -> Verdict {
        judge_update(&UpdateEvent {
            container: ContainerEvent {
                name: "job".into(),
                ..ContainerEvent::empty()
            },
            before: Limits {
                memory: before.0,
                pids: before.1,
                ..Limits::none()
            },
            after: Limits {
                memory: after.0,
                pids: after.1,
                ..Limits::none()
            },
        })
    }

    fn patched(verdict: Verdict) -> Option<Limits> {
        match verdict {
            Verdict::Mutate(patch) => {
                assert!(patch.labels.is_empty() && patch.env.is_empty());
                Some(patch.limits)
            }
            Verdict::Allow => None,
            Verdict::Deny(reason) => panic!("unexpected deny: {reason}"),
        }
    }

    #[test]
    fn built_in_defaults() {
        let defaults = Defaults::from_json("{}").unwrap();
        assert_eq!(
            defaults,
            Defaults {
                memory: 256 << 20,
                pids: 512
            }
        );
    }

    #[test]
    fn missing_limits_get_the_defaults() {
        let defaults = Defaults::from_json(r#"{"memory":"1g","pids":64}"#).unwrap();
        let limits = patched(judge(&spec(None, None), defaults)).unwrap();
        assert_eq!(limits.memory, Some(1 << 30));
        assert_eq!(limits.pids, Some(64));
        assert_eq!(limits.cpus, None);
    }

    #[test]
    fn user_limits_are_left_alone() {
        let defaults = Defaults::from_json("{}").unwrap();
        assert!(patched(judge(&spec(Some(1 << 20), Some(10)), defaults)).is_none());
        let only_pids = patched(judge(&spec(Some(1 << 20), None), defaults)).unwrap();
        assert_eq!(only_pids.memory, None);
        assert_eq!(only_pids.pids, Some(512));
    }

    #[test]
    fn an_update_lifting_a_limit_is_denied_and_one_changing_it_allowed() {
        let Verdict::Deny(why) = update((Some(1 << 28), Some(512)), (None, Some(512))) else {
            panic!("lifting memory was allowed");
        };
        assert!(why.contains("memory") && why.contains("\"job\""), "{why}");
        let Verdict::Deny(why) = update((Some(1 << 28), Some(512)), (None, None)) else {
            panic!("lifting both was allowed");
        };
        assert!(why.contains("memory and pids"), "{why}");
        assert!(matches!(
            update((Some(1 << 28), Some(512)), (Some(1 << 30), Some(64))),
            Verdict::Allow
        ));
        // A container that never had a limit loses nothing.
        assert!(matches!(update((None, None), (None, None)), Verdict::Allow));
    }

    #[test]
    fn memory_as_bytes_or_string() {
        let bytes = Defaults::from_json(r#"{"memory":1048576}"#).unwrap();
        assert_eq!(bytes.memory, 1 << 20);
        let text = Defaults::from_json(r#"{"memory":"512MiB"}"#).unwrap();
        assert_eq!(text.memory, 512 << 20);
    }

    #[test]
    fn bad_configuration_is_a_clear_error() {
        let err = Defaults::from_json(r#"{"memory":"lots"}"#).unwrap_err();
        assert!(
            err.contains("config `memory`") && err.contains("lots"),
            "{err}"
        );
        let err = Defaults::from_json(r#"{"pids":0}"#).unwrap_err();
        assert!(err.contains("pids"), "{err}");
        let err = Defaults::from_json(r#"{"memroy":"1g"}"#).unwrap_err();
        assert!(err.contains("memroy"), "{err}");
        let err = Defaults::from_json(r#"{"memory":0}"#).unwrap_err();
        assert!(err.contains("more than 0"), "{err}");
    }
}
