//! The htpasswd file: parsing, bcrypt verification, a cache of good verifications, and
//! reloading when the file's modification time changes.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// At most this many cached verifications; the cache is emptied when full (a rare
/// re-verification is cheaper than unbounded memory in a long-lived instance).
const CACHE_LIMIT: usize = 4096;

/// Why the htpasswd file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// The file could not be read (not granted, missing, unreadable).
    #[error(
        "cannot read htpasswd file {path}: {source}; check the plugin's `htpasswd` setting \
         and that its directory is granted"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One entry of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub user: String,
    pub hash: String,
}

/// Parses htpasswd text: `user:hash` per line; blank lines and `#` comments skipped. Entries
/// whose hash is not bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`) are returned in the second list
/// so the caller can warn: MD5 (`$apr1$`), SHA-1 and crypt hashes are too weak to accept.
pub fn parse(text: &str) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut unsupported = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            unsupported.push(line.chars().take(32).collect());
            continue;
        };
        let hash = hash.trim();
        if is_bcrypt(hash) && !user.is_empty() {
            entries.push(Entry {
                user: user.to_owned(),
                hash: hash.to_owned(),
            });
        } else {
            unsupported.push(user.to_owned());
        }
    }
    (entries, unsupported)
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// What checking a user name and password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The password is right.
    Good,
    /// The user is in the file but the password is wrong.
    WrongPassword,
    /// The file has no such user.
    UnknownUser,
}

/// How often the file's mtime is looked at: a WASI `stat` costs tens of
/// microseconds, far more than the rest of a cached check.
pub const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The file, loaded lazily and reloaded when its mtime changes (looked at
/// no more often than every [`RECHECK`]).
pub struct Htpasswd {
    path: PathBuf,
    recheck: std::time::Duration,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// The mtime the users were loaded at; `None` before the first load.
    loaded_at: Option<SystemTime>,
    /// When the mtime was last looked at.
    checked_at: Option<std::time::Instant>,
    users: HashMap<String, String>,
    /// SHA-256 of (user, password) pairs already verified against the current file.
    verified: HashSet<[u8; 32]>,
    /// How many bcrypt verifications ran (for tests and debug logs).
    bcrypt_runs: u64,
}

impl Htpasswd {
    /// The file at `path` (a guest path, in a directory the operator granted).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Htpasswd {
            path: path.into(),
            recheck: RECHECK,
            state: RefCell::new(State::default()),
        }
    }

    /// Looks at the file's mtime at most every `every` (zero: on every check).
    pub fn with_recheck(mut self, every: std::time::Duration) -> Self {
        self.recheck = every;
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks a user name and password, reloading the file first if it changed.
    pub fn check(&self, user: &str, password: &str) -> Result<Check, HtpasswdError> {
        self.reload_if_changed()?;
        let mut state = self.state.borrow_mut();
        let Some(hash) = state.users.get(user).cloned() else {
            return Ok(Check::UnknownUser);
        };
        let key = cache_key(user, password);
        if state.verified.contains(&key) {
            return Ok(Check::Good);
        }
        state.bcrypt_runs += 1;
        // A malformed hash verifies as false: the user cannot log in until it is fixed.
        if bcrypt::verify(password, &hash).unwrap_or(false) {
            if state.verified.len() >= CACHE_LIMIT {
                state.verified.clear();
            }
            state.verified.insert(key);
            Ok(Check::Good)
        } else {
            Ok(Check::WrongPassword)
        }
    }

    /// How many bcrypt verifications ran so far.
    pub fn bcrypt_runs(&self) -> u64 {
        self.state.borrow().bcrypt_runs
    }

    fn reload_if_changed(&self) -> Result<(), HtpasswdError> {
        let now = std::time::Instant::now();
        {
            let state = self.state.borrow();
            if state.loaded_at.is_some()
                && state
                    .checked_at
                    .is_some_and(|t| now.duration_since(t) < self.recheck)
            {
                return Ok(());
            }
        }
        self.state.borrow_mut().checked_at = Some(now);
        let read_error = |source| HtpasswdError::Read {
            path: self.path.clone(),
            source,
        };
        let modified = std::fs::metadata(&self.path)
            .and_then(|meta| meta.modified())
            .map_err(read_error)?;
        if self.state.borrow().loaded_at == Some(modified) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).map_err(read_error)?;
        let (entries, unsupported) = parse(&text);
        if !unsupported.is_empty() {
            berth_plugin_sdk::warn!(
                "htpasswd {}: ignoring {} entries without a bcrypt hash (users: {}); \
                 recreate them with `htpasswd -B`",
                self.path.display(),
                unsupported.len(),
                unsupported.join(", ")
            );
        }
        let mut state = self.state.borrow_mut();
        state.users = entries.into_iter().map(|e| (e.user, e.hash)).collect();
        // A changed file may have changed passwords: earlier verifications no longer hold.
        state.verified.clear();
        state.loaded_at = Some(modified);
        Ok(())
    }
}

/// The cache key: a hash of the pair, so the cache never holds a password. Length-prefixed so
/// ("ab", "c") and ("a", "bc") differ.
fn cache_key(user: &str, password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((user.len() as u64).to_le_bytes());
    hasher.update(user.as_bytes());
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_skipping_comments_and_weak_hashes() {
        let text = "# users\nalice:$2y$05$abcdefghijklmnopqrstuuKkz1v0aFQ0oQ7uQ1uHcX5eU0c2yJm1e\r\n\n\
                    bob:$apr1$xyz$abc\ncarol:{SHA}abc=\nbroken-line\n";
        let (entries, unsupported) = parse(text);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].user, "alice");
        assert!(entries[0].hash.starts_with("$2y$05$"));
        assert_eq!(unsupported, vec!["bob", "carol", "broken-line"]);
    }

    #[test]
    fn cache_keys_separate_user_and_password() {
        assert_ne!(cache_key("ab", "c"), cache_key("a", "bc"));
        assert_eq!(cache_key("a", "b"), cache_key("a", "b"));
    }

    fn write_file(dir: &Path, lines: &[(&str, &str)]) -> PathBuf {
        let text: String = lines
            .iter()
            .map(|(user, password)| {
                // Cost 4, the minimum: the tests check logic, not bcrypt's strength.
                let hash = bcrypt::hash(password, 4).unwrap();
                format!("{user}:{hash}\n")
            })
            .collect();
        let path = dir.join("htpasswd");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn checks_passwords_and_caches_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = Htpasswd::new(write_file(dir.path(), &[("alice", "s3cret")]));
        assert_eq!(file.check("alice", "s3cret").unwrap(), Check::Good);
        assert_eq!(file.bcrypt_runs(), 1);
        assert_eq!(file.check("alice", "s3cret").unwrap(), Check::Good);
        assert_eq!(file.bcrypt_runs(), 1, "the second check must hit the cache");
        assert_eq!(file.check("alice", "wrong").unwrap(), Check::WrongPassword);
        assert_eq!(file.check("alice", "wrong").unwrap(), Check::WrongPassword);
        assert_eq!(file.bcrypt_runs(), 3, "failures are never cached");
        assert_eq!(file.check("mallory", "x").unwrap(), Check::UnknownUser);
    }

    #[test]
    fn apache_2y_hashes_verify() {
        // `htpasswd -nbB alice s3cret` writes `$2y$`; bcrypt treats it like `$2b$`.
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, format!("alice:{hash}\n")).unwrap();
        assert_eq!(
            Htpasswd::new(path).check("alice", "s3cret").unwrap(),
            Check::Good
        );
    }

    #[test]
    fn a_changed_file_is_reloaded_and_the_cache_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), &[("alice", "old")]);
        let file = Htpasswd::new(&path).with_recheck(std::time::Duration::ZERO);
        assert_eq!(file.check("alice", "old").unwrap(), Check::Good);
        write_file(dir.path(), &[("alice", "new"), ("bob", "pw")]);
        // Make sure the mtime differs even on a coarse-grained file system.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(file.check("alice", "old").unwrap(), Check::WrongPassword);
        assert_eq!(file.check("alice", "new").unwrap(), Check::Good);
        assert_eq!(file.check("bob", "pw").unwrap(), Check::Good);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let file = Htpasswd::new("/nonexistent/berth/htpasswd");
        let err = file.check("alice", "x").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/berth/htpasswd"), "{err}");
        assert!(err.contains("granted"), "{err}");
    }
}
