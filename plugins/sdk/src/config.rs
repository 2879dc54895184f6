//! The plugin's configuration: its `[plugin.config]` table from `berth.toml`, as JSON.

use serde::de::DeserializeOwned;

use crate::bindings::common::berth::plugin::config as host;

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The table does not fit the plugin's configuration type.
    #[error("invalid plugin configuration: {source}; fix the [plugin.config] table in berth.toml")]
    Invalid {
        #[source]
        source: serde_json::Error,
    },
}

/// The whole configuration table, deserialized into `T`.
///
/// Use `#[serde(default)]` on fields the operator may leave out, and
/// `#[serde(deny_unknown_fields)]` to turn a misspelt key into an error instead of a silently
/// ignored setting.
///
/// ```no_run
/// #[derive(serde::Deserialize, Default)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config { registries: Vec<String> }
///
/// let config: Config = berth_plugin_sdk::config()?;
/// # Ok::<(), berth_plugin_sdk::ConfigError>(())
/// ```
pub fn config<T: DeserializeOwned>() -> Result<T, ConfigError> {
    parse(&host::json())
}

/// Parses a configuration JSON document into `T` (what [`config`] does with the host's table;
/// public so plugins can unit-test their configuration types natively).
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, ConfigError> {
    // The host sends `{}` for "no table"; an empty string is treated the same way.
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|source| ConfigError::Invalid { source })
}

/// The configuration, read and parsed once on first use and kept for the instance's life
/// (the host's table does not change under a loaded plugin).
///
/// ```no_run
/// use berth_plugin_sdk::CachedConfig;
/// #[derive(serde::Deserialize, Default)]
/// struct Config { registries: Vec<String> }
///
/// #[derive(Default)]
/// struct Policy { config: CachedConfig<Config> }
/// ```
pub struct CachedConfig<T>(std::cell::OnceCell<Result<T, ConfigError>>);

impl<T: DeserializeOwned> CachedConfig<T> {
    /// An empty cache.
    pub const fn new() -> Self {
        CachedConfig(std::cell::OnceCell::new())
    }

    /// The configuration, or the error reading it (the same one on every call).
    pub fn get(&self) -> Result<&T, &ConfigError> {
        self.0.get_or_init(config::<T>).as_ref()
    }
}

impl<T: DeserializeOwned> Default for CachedConfig<T> {
    fn default() -> Self {
        CachedConfig::new()
    }
}

/// The raw JSON text of the configuration table (`{}` when the operator gave none).
pub fn config_json() -> String {
    host::json()
}

/// One top-level key: a string as it is, any other value as JSON; `None` when absent.
pub fn config_value(key: &str) -> Option<String> {
    host::get(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        name: String,
        count: u32,
    }

    #[test]
    fn parses_a_table_and_defaults_missing_keys() {
        let sample: Sample = parse(r#"{"name":"x"}"#).unwrap();
        assert_eq!(sample.name, "x");
        assert_eq!(sample.count, 0);
        let empty: Sample = parse("").unwrap();
        assert_eq!(empty.name, "");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = parse::<Sample>(r#"{"nmae":"x"}"#).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("nmae"), "{message}");
        assert!(message.contains("berth.toml"), "{message}");
    }
}
