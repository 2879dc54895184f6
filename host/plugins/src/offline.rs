//! `berth plugin test PLUGIN.wasm --event EVENT.json`: one plugin, one
//! call, no daemon.

use std::path::Path;

use berth_auth::{Action, Credentials};
use berth_policy::Event;
use berth_scan::{ImageInfo, RootView};
use serde::Deserialize;

use crate::spec::{Kind, PluginSpec};
use crate::{ManagerOptions, PluginError, PluginManager};

/// The input of an auth test:
/// `{"credentials": {"basic": {"username": "alice", "password": "pw"}},
///   "action": "push", "target": {"kind": "repository", "name": "team/app"}}`.
/// `credentials` is `"anonymous"`, `{"basic": {...}}` or `{"bearer": "TOKEN"}`;
/// `action` and `target` may be left out to test only authentication.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthTest {
    #[serde(default = "anonymous")]
    pub credentials: TestCredentials,
    pub action: Option<TestAction>,
    #[serde(default)]
    pub target: TestTarget,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestCredentials {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(String),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestAction {
    Pull,
    Push,
    Delete,
    Admin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestTarget {
    #[serde(default = "repository")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

impl Default for TestTarget {
    fn default() -> TestTarget {
        TestTarget {
            kind: repository(),
            name: String::new(),
        }
    }
}

/// The input of a scanner test: `{"rootfs": "/path/to/unpacked", "image":
/// {"reference": "...", "digest": "...", "config-json": "{}"}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanTest {
    pub rootfs: std::path::PathBuf,
    #[serde(default)]
    pub image: ImageInfo,
}

/// A fresh mode-0700 directory, removed on drop: a shared cache in the
/// system temp directory could be planted by another user, and loading a
/// precompiled artifact runs its code.
struct PrivateDir(std::path::PathBuf);

impl PrivateDir {
    fn new() -> std::io::Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("berth-plugin-test-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(PrivateDir(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn anonymous() -> TestCredentials {
    TestCredentials::Anonymous
}

fn repository() -> String {
    "repository".into()
}

/// Loads `wasm` as a plugin of `kind` with `config_json` (a JSON object, or
/// `None` for `{}`), feeds it `input_json` and returns its answer as
/// printable text. Hooks take an event (see [`berth_policy::event`]); auth
/// providers an [`AuthTest`]; scanners a [`ScanTest`]. Storage backends
/// cannot be tested this way. The component is compiled into a private
/// temporary directory, removed afterwards.
pub fn test_plugin(
    wasm: &Path,
    kind: Kind,
    input_json: &str,
    config_json: Option<&str>,
) -> Result<String, PluginError> {
    let name = "test";
    let bytes = std::fs::read(wasm).map_err(|e| PluginError::Load {
        plugin: name.into(),
        message: format!("reading {}: {e}", wasm.display()),
    })?;
    let mut spec = PluginSpec::new(name, kind, wasm.display().to_string());
    if let Some(config) = config_json {
        spec.config = serde_json::from_str(config).map_err(|e| PluginError::Config {
            plugin: name.into(),
            message: format!("config is not valid JSON: {e}"),
        })?;
    }
    let input_error = |what: &str, e: &dyn std::fmt::Display| PluginError::Config {
        plugin: name.into(),
        message: format!("the {what} JSON is invalid: {e}"),
    };
    let cache = PrivateDir::new().map_err(|e| PluginError::Load {
        plugin: name.into(),
        message: format!(
            "creating a private compile cache in {}: {e}",
            std::env::temp_dir().display()
        ),
    })?;
    let manager = PluginManager::new(ManagerOptions::new(&cache.0));
    match kind {
        Kind::LifecycleHook => {
            let event = Event::from_json(input_json).map_err(|e| input_error("event", &e))?;
            manager.load(spec, &bytes)?;
            let verdict = manager.hook(name)?.judge(&event)?;
            Ok(serde_json::to_string_pretty(&verdict).unwrap_or_else(|_| format!("{verdict:?}")))
        }
        Kind::AuthProvider => {
            let test: AuthTest =
                serde_json::from_str(input_json).map_err(|e| input_error("auth test", &e))?;
            manager.load(spec, &bytes)?;
            let auth = manager.auth_provider(name)?;
            let credentials = match test.credentials {
                TestCredentials::Anonymous => Credentials::Anonymous,
                TestCredentials::Basic { username, password } => Credentials::Basic {
                    user: username,
                    password,
                },
                TestCredentials::Bearer(t) => Credentials::Bearer(t),
            };
            let authn = auth.authenticate(&credentials)?;
            let mut out = format!("authenticate: {authn:?}");
            if let Some(action) = test.action {
                let (who, groups) = match &authn {
                    crate::AuthnAnswer::Authenticated {
                        name,
                        groups,
                        anonymous: false,
                    } => (Some(name.as_str()), groups.clone()),
                    _ => (None, Vec::new()),
                };
                let action = match action {
                    TestAction::Pull => Action::Pull,
                    TestAction::Push => Action::Push,
                    TestAction::Delete => Action::Delete,
                    TestAction::Admin => Action::Admin,
                };
                let authz =
                    auth.authorize(who, &groups, action, &test.target.kind, &test.target.name)?;
                out.push_str(&format!("\nauthorize: {authz:?}"));
            }
            Ok(out)
        }
        Kind::Scanner => {
            let test: ScanTest =
                serde_json::from_str(input_json).map_err(|e| input_error("scan test", &e))?;
            let view = RootView::open(&test.rootfs).map_err(|e| input_error("scan test", &e))?;
            manager.load(spec, &bytes)?;
            let findings = manager.scanner(name)?.scan_image(&test.image, &view)?;
            Ok(serde_json::to_string_pretty(&findings).unwrap_or_else(|_| format!("{findings:?}")))
        }
        Kind::StorageBackend => Err(PluginError::Config {
            plugin: name.into(),
            message:
                "storage backends cannot be tested offline; load it into berthd and push an image"
                    .into(),
        }),
    }
}
