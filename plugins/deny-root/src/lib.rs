//! `deny-root` — a lifecycle hook that refuses to create containers whose process would run
//! as root (effective uid 0), and to run commands as root in containers (`exec`, `exec -u 0`),
//! unless the container carries an opt-out label.
//!
//! Events: `pre-create` and `pre-exec`.
//!
//! Configuration (`[plugin.config]`):
//! - `allow_label` (string, default `berth.policy/allow-root`): a container with this label
//!   set to `true` may run as root, and may have commands run in it as root.
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

/// The verdict for one command run in a container: the same rule as for the container itself,
/// so `exec -u 0` cannot walk round it.
pub fn judge_exec(exec: &ExecEvent, config: &Config) -> Verdict {
    if exec.uid != 0 {
        return Verdict::Allow;
    }
    if label(&exec.container.labels, &config.allow_label) == Some("true") {
        return Verdict::Allow;
    }
    let user = if exec.user.is_empty() {
        "the container's user, root".to_owned()
    } else {
        format!("user {:?}, uid 0", exec.user)
    };
    Verdict::deny(format!(
        "the command would run as root ({user}) in container {name:?}; policy deny-root \
         refuses it. Run it as another user with `exec -u UID[:GID]`, or label the container \
         {label}=true when it is created",
        name = exec.container.name,
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

    fn pre_exec(&self, exec: &ExecEvent) -> Verdict {
        match self.config.get() {
            Ok(config) => judge_exec(exec, config),
            Err(err) => Verdict::deny(format!("policy deny-root: {err}")),
        }
    }
}

berth_plugin_sdk::export_hook!(DenyRoot);

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(labels: &[(&str, &str)]) -> Vec<Pair> {
        labels
            .iter()
            .map(|(k, v)| Pair {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect()
    }

    fn spec(uid: u32, user: &str, labels: &[(&str, &str)]) -> ContainerSpec {
        ContainerSpec {
            name: "web".into(),
            image: "busybox".into(),
            user: user.into(),
            uid,
            labels: pairs(labels),
            network: "none".into(),
            ..ContainerSpec::empty()
        }
    }

    fn exec(uid: u32, user: &str, labels: &[(&str, &str)]) -> ExecEvent {
        ExecEvent {
            container: ContainerEvent {
                name: "web".into(),
                labels: pairs(labels),
                ..ContainerEvent::empty()
            },
            command: vec!["sh".into()],
            user: user.into(),
            uid,
            ..ExecEvent::empty()
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
    fn an_image_cannot_label_itself_out_of_the_policy() {
        let config = Config::default();
        let from_image = ContainerSpec {
            image_labels: pairs(&[(DEFAULT_ALLOW_LABEL, "true")]),
            ..spec(0, "", &[])
        };
        assert!(reason(judge(&from_image, &config)).is_some());
    }

    #[test]
    fn exec_as_root_is_denied_like_a_root_container() {
        let config = Config::default();
        let why = reason(judge_exec(&exec(0, "0", &[]), &config)).unwrap();
        assert!(why.contains("\"web\"") && why.contains("exec -u"), "{why}");
        let why = reason(judge_exec(&exec(0, "", &[]), &config)).unwrap();
        assert!(why.contains("the container's user"), "{why}");
        assert!(reason(judge_exec(&exec(65534, "nobody", &[]), &config)).is_none());
        let allowed = exec(0, "0", &[(DEFAULT_ALLOW_LABEL, "true")]);
        assert!(reason(judge_exec(&allowed, &config)).is_none());
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
