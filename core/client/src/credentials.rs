//! Registry credentials kept where docker, podman and skopeo keep them:
//! Docker's `config.json` (`auths` → `{"auth": base64(user:pass)}`), or a
//! credential helper named by `credHelpers` (per registry) or `credsStore`.
//!
//! The file is shared with other tools, so every key berth does not own is
//! preserved as it was, and writes are atomic (temp file, fsync, rename) with
//! mode 0600: a crash leaves the old file or the new one, never half of one.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::cred_helper::Helper;

/// Where Docker keeps Docker Hub's credentials, for compatibility.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Why credentials could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot find the docker config directory: set $DOCKER_CONFIG or $HOME")]
    NoConfigDir,
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON ({source}); fix or remove it")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {detail}; fix or remove that entry")]
    BadEntry { path: PathBuf, detail: String },
    #[error("credential helper docker-credential-{helper} {action} failed: {detail}")]
    Helper {
        helper: String,
        action: &'static str,
        detail: String,
    },
}

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.encoded())
    }

    fn encoded(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.username, self.password))
    }
}

// The password must never reach a log line through `{:?}`.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Docker-compatible credential storage rooted at one config directory.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
    helper_dir: Option<PathBuf>,
}

impl CredentialStore {
    /// The directory docker itself uses: `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn from_env() -> Result<Self, CredentialError> {
        let dir = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".docker"))
                .ok_or(CredentialError::NoConfigDir)?,
        };
        Ok(Self::at(dir))
    }

    /// A store whose `config.json` lives in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        CredentialStore {
            dir: dir.into(),
            helper_dir: None,
        }
    }

    /// Look up `docker-credential-*` helpers in `dir` instead of `$PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Credentials for `registry` (`host[:port]`, `docker.io` for Docker Hub).
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        let config = self.load()?;
        let key = server_key(registry);
        if let Some(helper) = self.helper_for(&config, registry) {
            return helper.get(&key);
        }
        let Some(auths) = config.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let Some((_, entry)) = auths.iter().find(|(k, _)| normalise(k) == normalise(&key)) else {
            return Ok(None);
        };
        self.decode_entry(registry, entry)
    }

    /// Save credentials for `registry`, in its helper if one is configured.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), CredentialError> {
        let mut config = self.load()?;
        let key = server_key(registry);
        if let Some(helper) = self.helper_for(&config, registry) {
            return helper.store(&key, creds);
        }
        let auths = auths_mut(&mut config, &self.config_path())?;
        auths.retain(|k, _| normalise(k) != normalise(&key));
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(creds.encoded()));
        auths.insert(key, Value::Object(entry));
        self.save(&config)
    }

    /// Forget `registry`'s credentials. Returns whether any were stored.
    pub fn erase(&self, registry: &str) -> Result<bool, CredentialError> {
        let mut config = self.load()?;
        let key = server_key(registry);
        if let Some(helper) = self.helper_for(&config, registry) {
            return helper.erase(&key);
        }
        let path = self.config_path();
        let auths = auths_mut(&mut config, &path)?;
        let before = auths.len();
        auths.retain(|k, _| normalise(k) != normalise(&key));
        if auths.len() == before {
            return Ok(false);
        }
        self.save(&config)?;
        Ok(true)
    }

    fn helper_for(&self, config: &Map<String, Value>, registry: &str) -> Option<Helper> {
        let want = normalise(&server_key(registry));
        let per_registry = config
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|m| m.iter().find(|(k, _)| normalise(k) == want))
            .and_then(|(_, v)| v.as_str());
        let global = config.get("credsStore").and_then(Value::as_str);
        per_registry
            .or(global)
            .filter(|n| !n.is_empty())
            .map(|name| Helper::new(name, self.helper_dir.as_deref()))
    }

    fn decode_entry(
        &self,
        registry: &str,
        entry: &Value,
    ) -> Result<Option<Credentials>, CredentialError> {
        let bad = |detail: String| CredentialError::BadEntry {
            path: self.config_path(),
            detail,
        };
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let raw = STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(format!("auths entry for {registry} is not base64")))?;
            let text = String::from_utf8(raw)
                .map_err(|_| bad(format!("auths entry for {registry} is not UTF-8")))?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| bad(format!("auths entry for {registry} lacks user:password")))?;
            return Ok(Some(Credentials::new(user, pass)));
        }
        // Older docker versions wrote the two fields separately.
        let field = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(match (field("username"), field("password")) {
            (Some(u), Some(p)) => Some(Credentials::new(u, p)),
            _ => None,
        })
    }

    fn load(&self) -> Result<Map<String, Value>, CredentialError> {
        let path = self.config_path();
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => {
                return Err(CredentialError::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice(&text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(CredentialError::BadEntry {
                path,
                detail: "the top level is not a JSON object".into(),
            }),
            Err(source) => Err(CredentialError::Json { path, source }),
        }
    }

    fn save(&self, config: &Map<String, Value>) -> Result<(), CredentialError> {
        let path = self.config_path();
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| CredentialError::Io {
                action,
                path,
                source,
            }
        };
        if !self.dir.exists() {
            fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(io("restricting", &self.dir))?;
        }
        let mut text =
            serde_json::to_vec_pretty(config).map_err(|source| CredentialError::Json {
                path: path.clone(),
                source,
            })?;
        text.push(b'\n');
        let tmp = self.dir.join(format!(
            ".config.json.{}.{}.tmp",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("creating", &tmp))?;
            f.write_all(&text).map_err(io("writing", &tmp))?;
            f.sync_all().map_err(io("syncing", &tmp))?;
            fs::rename(&tmp, &path).map_err(io("replacing", &path))?;
            // The rename is durable only once the directory entry is synced.
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io("syncing", &self.dir))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn auths_mut<'a>(
    config: &'a mut Map<String, Value>,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, CredentialError> {
    config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| CredentialError::BadEntry {
            path: path.to_path_buf(),
            detail: "\"auths\" is not an object".into(),
        })
}

/// The key docker uses for `registry` in `auths` and with helpers.
pub(crate) fn server_key(registry: &str) -> String {
    match normalise(registry).as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        _ => registry.to_string(),
    }
}

/// `https://host:port/v1/` → `host:port`, so keys written by any tool match.
fn normalise(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;

    #[test]
    fn round_trip_preserves_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"auths":{"other.io":{"auth":"dTpw"}},"psFormat":"table {{.ID}}","proxies":{"default":{}}}"#,
        )
        .unwrap();
        let store = CredentialStore::at(dir.path());
        store
            .store("localhost:5000", &Credentials::new("alice", "s3:cret"))
            .unwrap();
        let got = store.get("localhost:5000").unwrap().unwrap();
        assert_eq!(got, Credentials::new("alice", "s3:cret"));
        assert_eq!(
            store.get("other.io").unwrap(),
            Some(Credentials::new("u", "p"))
        );
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert!(v["proxies"]["default"].is_object());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(store.erase("localhost:5000").unwrap());
        assert!(!store.erase("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        assert!(store.get("other.io").unwrap().is_some());
    }

    #[test]
    fn docker_hub_and_url_shaped_keys() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"},"https://quay.io":{"username":"q","password":"w"}}}"#,
        )
        .unwrap();
        let store = CredentialStore::at(dir.path());
        assert_eq!(
            store.get("docker.io").unwrap(),
            Some(Credentials::new("hub", "pw"))
        );
        assert_eq!(
            store.get("quay.io").unwrap(),
            Some(Credentials::new("q", "w"))
        );
        assert_eq!(store.get("ghcr.io").unwrap(), None);
        store
            .store("docker.io", &Credentials::new("a", "b"))
            .unwrap();
        let v: Value =
            serde_json::from_slice(&fs::read(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(v["auths"].as_object().unwrap().len(), 2);
        assert!(v["auths"][DOCKER_HUB_KEY]["auth"].is_string());
    }

    #[test]
    fn missing_and_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("nested"));
        assert_eq!(store.get("x.io").unwrap(), None);
        store.store("x.io", &Credentials::new("a", "b")).unwrap();
        let mode = fs::metadata(dir.path().join("nested"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        fs::write(store.config_path(), "{nope").unwrap();
        assert!(matches!(
            store.get("x.io"),
            Err(CredentialError::Json { .. })
        ));
        fs::write(store.config_path(), r#"{"auths":{"x.io":{"auth":"!!"}}}"#).unwrap();
        assert!(matches!(
            store.get("x.io"),
            Err(CredentialError::BadEntry { .. })
        ));
    }

    #[test]
    fn debug_hides_the_password() {
        let s = format!("{:?}", Credentials::new("bob", "hunter2"));
        assert!(s.contains("bob") && !s.contains("hunter2"));
    }
}
