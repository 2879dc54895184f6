//! `deny-root` — a lifecycle hook that refuses to create containers whose process would run
//! as root (effective uid 0), unless the container carries an opt-out label.
//!
//! Events: `pre-create` only.
//!
//! Configuration (`[plugin.config]`):
//! - `allow_label` (string, default `berth.policy/allow-root`): a container with this label
//!   set to `true` may run as root.
//!
//! ```toml
//! [[plugin]]
//! name = "deny-root"
//! kind = "lifecycle-hook"
//! source = "deny_root.wasm"
//! [plugin.config]
//! allow_label = "example.com/root-ok"
//! ```

use berth_plugin_sdk::CachedConfig;
use berth_plugin_sdk::prelude::*;

/// The label that lets a container run as root when the operator names none.
pub const DEFAULT_ALLOW_LABEL: &str = "berth.policy/allow-root";

/// The plugin's configuration table.
#[derive(Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The opt-out label.
    pub allow_label: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow_label: DEFAULT_ALLOW_LABEL.to_owned(),
        }
    }
}

/// The verdict for one container spec.
pub fn judge(spec: &ContainerSpec, config: &Config) -> Verdict {
    if spec.uid != 0 {
        return Verdict::Allow;
    }
    if label(&spec.labels, &config.allow_label) == Some("true") {
        return Verdict::Allow;
    }
    let user = if spec.user.is_empty() {
        "the image's default user, root".to_owned()
    } else {
        format!("user {:?}, uid 0", spec.user)
    };
    Verdict::deny(format!(
        "container {name:?} would run as root ({user}); policy deny-root refuses it. Run it as \
         another user with `-u UID[:GID]`, or allow it with `--label {label}=true`",
        name = spec.name,
        label = config.allow_label,
    ))
}

#[derive(Default)]
struct DenyRoot {
    config: CachedConfig<Config>,
}

impl Hook for DenyRoot {
    fn pre_create(&self, spec: &ContainerSpec) -> Verdict {
        match self.config.get() {
            Ok(config) => judge(spec, config),
            // Fail closed: a policy that cannot read its configuration must not let root in.
            Err(err) => Verdict::deny(format!("policy deny-root: {err}")),
        }
    }
}

berth_plugin_sdk::export_hook!(DenyRoot);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uid: u32, user: &str, labels: &[(&str, &str)]) -> ContainerSpec {
        ContainerSpec {
            name: "web".into(),
            image: "busybox".into(),
            image_digest: String::new(),
            user: user.into(),
            uid,
            gid: 0,
            command: vec![],
            env: vec![],
            labels: labels
                .iter()
                .map(|(k, v)| Pair {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            limits: Limits::none(),
            privileged: false,
            cap_add: vec![],
            network: "none".into(),
            mounts: vec![],
            read_only_rootfs: false,
        }
    }

    fn reason(verdict: Verdict) -> Option<String> {
        match verdict {
            Verdict::Deny(reason) => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn root_is_denied_with_a_reason_naming_the_container_and_the_fixes() {
        let reason = reason(judge(&spec(0, "", &[]), &Config::default())).unwrap();
        assert!(reason.contains("\"web\""), "{reason}");
        assert!(reason.contains("-u"), "{reason}");
        assert!(reason.contains("berth.policy/allow-root=true"), "{reason}");
    }

    #[test]
    fn a_non_root_uid_is_allowed_even_when_named_root_like() {
        assert!(reason(judge(&spec(1000, "app", &[]), &Config::default())).is_none());
    }

    #[test]
    fn the_label_allows_root_only_with_value_true() {
        let config = Config::default();
        let allowed = spec(0, "root", &[(DEFAULT_ALLOW_LABEL, "true")]);
        assert!(reason(judge(&allowed, &config)).is_none());
        let wrong_value = spec(0, "root", &[(DEFAULT_ALLOW_LABEL, "yes")]);
        assert!(reason(judge(&wrong_value, &config)).is_some());
    }

    #[test]
    fn the_label_is_configurable() {
        let config: Config =
            berth_plugin_sdk::parse_config(r#"{"allow_label":"example.com/root-ok"}"#).unwrap();
        let old_label = spec(0, "", &[(DEFAULT_ALLOW_LABEL, "true")]);
        let why = reason(judge(&old_label, &config)).unwrap();
        assert!(why.contains("example.com/root-ok=true"), "{why}");
        let new_label = spec(0, "", &[("example.com/root-ok", "true")]);
        assert!(reason(judge(&new_label, &config)).is_none());
    }
}
