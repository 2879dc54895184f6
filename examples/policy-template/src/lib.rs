//! require-labels: refuse containers that lack the labels the operator requires.
//!
//! Configuration: `required = ["team", "cost-center"]` (label keys).

use berth_plugin_sdk::CachedConfig;
use berth_plugin_sdk::prelude::*;

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub required: Vec<String>,
}

/// The decision, as a plain function so `cargo test` can check it natively.
pub fn judge(spec: &ContainerSpec, config: &Config) -> Verdict {
    let missing: Vec<&str> = config
        .required
        .iter()
        .filter(|key| label(&spec.labels, key).is_none())
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Verdict::Allow;
    }
    Verdict::deny(format!(
        "container {:?} lacks the label(s) {}; add them with --label KEY=VALUE",
        spec.name,
        missing.join(", ")
    ))
}

#[derive(Default)]
struct RequireLabels {
    config: CachedConfig<Config>,
}

impl Hook for RequireLabels {
    // Only pre_create is overridden, so berth sends this plugin pre-create events only.
    fn pre_create(&self, spec: &ContainerSpec) -> Verdict {
        match self.config.get() {
            Ok(config) => judge(spec, config),
            Err(err) => Verdict::deny(format!("policy require-labels: {err}")),
        }
    }
}

berth_plugin_sdk::export_hook!(RequireLabels);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_labels_are_named() {
        let event: serde_json::Value = serde_json::from_str(include_str!("../event.json")).unwrap();
        let name = event["pre-create"]["name"].as_str().unwrap().to_owned();
        let spec = ContainerSpec {
            name,
            image: "busybox".into(),
            uid: 1000,
            gid: 1000,
            labels: vec![Pair {
                key: "team".into(),
                value: "web".into(),
            }],
            network: "bridge".into(),
            ..ContainerSpec::empty()
        };
        let config = Config {
            required: vec!["team".into(), "cost-center".into()],
        };
        let Verdict::Deny(reason) = judge(&spec, &config) else {
            panic!("allowed")
        };
        assert!(
            reason.contains("cost-center") && !reason.contains("team,"),
            "{reason}"
        );
        let config = Config {
            required: vec!["team".into()],
        };
        assert!(matches!(judge(&spec, &config), Verdict::Allow));
    }
}
