//! `allowed-registries` — a lifecycle hook that lets images be pulled from and pushed to the
//! listed registries only.
//!
//! Events: `pre-pull`, `pre-push`.
//!
//! Configuration (`[plugin.config]`):
//! - `registries` (list of strings, required): registry hosts as berth normalises them
//!   (`docker.io`, `ghcr.io`, `localhost:5000`); globs allowed (`localhost:*`,
//!   `*.example.com`). An empty list refuses everything.
//!
//! ```toml
//! [[plugin]]
//! name = "allowed-registries"
//! kind = "lifecycle-hook"
//! source = "allowed_registries.wasm"
//! [plugin.config]
//! registries = ["docker.io", "localhost:*"]
//! ```

use berth_plugin_sdk::CachedConfig;
use berth_plugin_sdk::prelude::*;

/// The plugin's configuration table.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Allowed registry hosts or globs.
    pub registries: Vec<String>,
}

/// The verdict for pulling (`verb` = "pull") or pushing `image`.
pub fn judge(image: &ImageEvent, verb: &str, config: &Config) -> Verdict {
    if matches_any(&config.registries, &image.registry) {
        return Verdict::Allow;
    }
    let allowed = if config.registries.is_empty() {
        "none (the allow-list is empty)".to_owned()
    } else {
        config.registries.join(", ")
    };
    Verdict::deny(format!(
        "cannot {verb} {reference}: registry {registry} is not allowed by policy \
         allowed-registries; allowed registries: {allowed}",
        reference = image.reference,
        registry = image.registry,
    ))
}

#[derive(Default)]
struct AllowedRegistries {
    config: CachedConfig<Config>,
}

impl AllowedRegistries {
    fn check(&self, image: &ImageEvent, verb: &str) -> Verdict {
        match self.config.get() {
            Ok(config) => judge(image, verb, config),
            Err(err) => Verdict::deny(format!("policy allowed-registries: {err}")),
        }
    }
}

impl Hook for AllowedRegistries {
    fn pre_pull(&self, image: &ImageEvent) -> Verdict {
        self.check(image, "pull")
    }

    fn pre_push(&self, image: &ImageEvent) -> Verdict {
        self.check(image, "push")
    }
}

berth_plugin_sdk::export_hook!(AllowedRegistries);

#[cfg(test)]
mod tests {
    use super::*;

    fn image(registry: &str, repository: &str) -> ImageEvent {
        ImageEvent {
            reference: format!("{registry}/{repository}:latest"),
            registry: registry.into(),
            repository: repository.into(),
            tag: Some("latest".into()),
            digest: None,
        }
    }

    fn config(json: &str) -> Config {
        berth_plugin_sdk::parse_config(json).unwrap()
    }

    #[test]
    fn listed_and_globbed_registries_are_allowed() {
        let config = config(r#"{"registries":["docker.io","localhost:*"]}"#);
        assert!(matches!(
            judge(&image("docker.io", "library/busybox"), "pull", &config),
            Verdict::Allow
        ));
        assert!(matches!(
            judge(&image("localhost:5000", "app"), "push", &config),
            Verdict::Allow
        ));
    }

    #[test]
    fn others_are_denied_with_the_allowed_list() {
        let config = config(r#"{"registries":["docker.io","localhost:*"]}"#);
        let Verdict::Deny(reason) = judge(&image("quay.io", "x/y"), "pull", &config) else {
            panic!("quay.io allowed");
        };
        assert!(
            reason.contains("cannot pull quay.io/x/y:latest"),
            "{reason}"
        );
        assert!(reason.contains("docker.io, localhost:*"), "{reason}");
        // A glob matches the whole host, not a prefix of it.
        let Verdict::Deny(_) = judge(&image("docker.io.evil.com", "x"), "push", &config) else {
            panic!("prefix matched");
        };
    }

    #[test]
    fn an_empty_list_refuses_everything_and_says_so() {
        let config = config(r#"{"registries":[]}"#);
        let Verdict::Deny(reason) = judge(&image("docker.io", "a"), "pull", &config) else {
            panic!("allowed with an empty list");
        };
        assert!(reason.contains("empty"), "{reason}");
    }

    #[test]
    fn a_missing_list_is_a_configuration_error() {
        let err = berth_plugin_sdk::parse_config::<Config>("{}").unwrap_err();
        assert!(err.to_string().contains("registries"), "{err}");
    }
}
