//! Docker credential helpers: `docker-credential-<name> get|store|erase`,
//! speaking JSON (or, for `get` and `erase`, the bare server URL) on stdin
//! and stdout, as docker's `docker-credential-helpers` protocol defines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::credentials::{CredentialError, Credentials};

/// What helpers print when they hold nothing for a server.
const NOT_FOUND: &str = "credentials not found in native keychain";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    username: String,
    secret: String,
}

pub(crate) struct Helper {
    name: String,
    program: PathBuf,
}

impl Helper {
    pub(crate) fn new(name: &str, dir: Option<&Path>) -> Self {
        let file = format!("docker-credential-{name}");
        let program = match dir {
            Some(d) => d.join(file),
            None => PathBuf::from(file),
        };
        Helper {
            name: name.to_string(),
            program,
        }
    }

    pub(crate) fn get(&self, server: &str) -> Result<Option<Credentials>, CredentialError> {
        let out = self.run("get", server.as_bytes())?;
        if !out.ok {
            if out.stdout.contains(NOT_FOUND) || out.stderr.contains(NOT_FOUND) {
                return Ok(None);
            }
            return Err(self.failed("get", &out));
        }
        let c: HelperCreds =
            serde_json::from_str(&out.stdout).map_err(|e| CredentialError::Helper {
                helper: self.name.clone(),
                action: "get",
                detail: format!("its answer is not the expected JSON: {e}"),
            })?;
        Ok(Some(Credentials::new(c.username, c.secret)))
    }

    pub(crate) fn store(&self, server: &str, creds: &Credentials) -> Result<(), CredentialError> {
        let body = HelperCreds {
            server_url: server.to_string(),
            username: creds.username.clone(),
            secret: creds.password.clone(),
        };
        let input = serde_json::to_vec(&body).map_err(|e| CredentialError::Helper {
            helper: self.name.clone(),
            action: "store",
            detail: e.to_string(),
        })?;
        let out = self.run("store", &input)?;
        if !out.ok {
            return Err(self.failed("store", &out));
        }
        Ok(())
    }

    pub(crate) fn erase(&self, server: &str) -> Result<bool, CredentialError> {
        let out = self.run("erase", server.as_bytes())?;
        if out.ok {
            return Ok(true);
        }
        if out.stdout.contains(NOT_FOUND) || out.stderr.contains(NOT_FOUND) {
            return Ok(false);
        }
        Err(self.failed("erase", &out))
    }

    fn run(&self, action: &'static str, input: &[u8]) -> Result<Output, CredentialError> {
        let spawn_err = |e: std::io::Error| CredentialError::Helper {
            helper: self.name.clone(),
            action,
            detail: format!(
                "cannot run {} ({e}); install it or remove it from config.json",
                self.program.display()
            ),
        };
        let mut child = Command::new(&self.program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input).map_err(spawn_err)?;
            // Dropping stdin closes it: helpers read to end of input.
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        tracing::debug!(helper = %self.name, action, status = ?out.status, "credential helper ran");
        Ok(Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    fn failed(&self, action: &'static str, out: &Output) -> CredentialError {
        let said = [out.stdout.as_str(), out.stderr.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        CredentialError::Helper {
            helper: self.name.clone(),
            action,
            detail: if said.is_empty() {
                "it exited with an error and said nothing".into()
            } else {
                said
            },
        }
    }
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::credentials::CredentialStore;

    /// Held by each test that writes a helper and runs it. Another test's
    /// child, forked while a script is still open for writing here, keeps
    /// that descriptor until it execs, and running the script meanwhile
    /// fails with ETXTBSY ("Text file busy").
    static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn spawning() -> std::sync::MutexGuard<'static, ()> {
        SPAWNING.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A real helper program: a shell script keeping one file per server.
    fn install_helper(dir: &Path) {
        let script = format!(
            r#"#!/bin/sh
set -e
db={db}
mkdir -p "$db"
case "$1" in
get)   url=$(cat); f="$db/$(printf %s "$url" | tr -c 'a-zA-Z0-9' _)"
       if [ -f "$f" ]; then cat "$f"; else echo "{NOT_FOUND}"; exit 1; fi ;;
store) json=$(cat); url=$(printf %s "$json" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
       printf %s "$json" > "$db/$(printf %s "$url" | tr -c 'a-zA-Z0-9' _)" ;;
erase) url=$(cat); f="$db/$(printf %s "$url" | tr -c 'a-zA-Z0-9' _)"
       if [ -f "$f" ]; then rm "$f"; else echo "{NOT_FOUND}"; exit 1; fi ;;
*) exit 2 ;;
esac
"#,
            db = dir.join("db").display()
        );
        let path = dir.join("docker-credential-fake");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn creds_store_helper_round_trip() {
        let _spawning = spawning();
        let dir = tempfile::tempdir().unwrap();
        install_helper(dir.path());
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore":"fake"}"#).unwrap();
        let store = CredentialStore::at(dir.path()).with_helper_dir(dir.path());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        store
            .store("localhost:5000", &Credentials::new("u", "p w"))
            .unwrap();
        assert_eq!(
            store.get("localhost:5000").unwrap(),
            Some(Credentials::new("u", "p w"))
        );
        // Nothing leaked into config.json: the helper owns the secret.
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(!text.contains("auths"));
        assert!(store.erase("localhost:5000").unwrap());
        assert!(!store.erase("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
    }

    #[test]
    fn per_registry_helper_wins_and_missing_helper_is_reported() {
        let _spawning = spawning();
        let dir = tempfile::tempdir().unwrap();
        install_helper(dir.path());
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"absent","credHelpers":{"localhost:5000":"fake"}}"#,
        )
        .unwrap();
        let store = CredentialStore::at(dir.path()).with_helper_dir(dir.path());
        store
            .store("localhost:5000", &Credentials::new("a", "b"))
            .unwrap();
        assert!(store.get("localhost:5000").unwrap().is_some());
        let err = store.get("other.io").unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-absent"),
            "{err}"
        );
    }
}
