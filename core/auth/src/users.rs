//! Users with bcrypt-hashed passwords and their grants, kept in the
//! `users` JSON tree of the state database.
//!
//! bcrypt costs tens of milliseconds on purpose, and clients such as skopeo
//! send basic credentials with every request, so successful verifications
//! are remembered for a few minutes, keyed by user and the SHA-256 of the
//! password. Any change to any user forgets them all. Callers on an async
//! runtime should call [`UserStore::verify`] from `spawn_blocking`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use berth_state::{JsonTree, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::AuthError;
use crate::grants::{Grant, parse_grants};

/// bcrypt's cost when the configuration does not say.
pub const DEFAULT_COST: u32 = 10;
/// How long a successful verification is remembered.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Serialize, Deserialize)]
struct UserRecord {
    hash: String,
    grants: Vec<String>,
    created: u64,
}

/// A user as listed: never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub grants: Vec<String>,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// A user whose password was just verified, with its parsed grants.
#[derive(Debug, Clone)]
pub struct VerifiedUser {
    pub name: String,
    pub grants: Arc<Vec<Grant>>,
}

struct Cached {
    until: Instant,
    grants: Arc<Vec<Grant>>,
}

#[derive(Default)]
struct Caches {
    /// Bumped on every change, so a verification that raced a change does
    /// not put what it read before the change into the cache.
    generation: u64,
    verified: HashMap<(String, [u8; 32]), Cached>,
    grants: HashMap<String, Arc<Vec<Grant>>>,
}

/// The user database.
pub struct UserStore {
    tree: JsonTree,
    cost: u32,
    ttl: Duration,
    caches: Mutex<Caches>,
    /// Verified against when the user does not exist, so that an unknown
    /// name costs as much as a wrong password and names cannot be probed.
    dummy_hash: OnceLock<String>,
}

/// `[a-z0-9._-]{1,64}`.
pub fn validate_user_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidUserName(name.to_string()))
    }
}

impl UserStore {
    /// Open the user tree with bcrypt `cost` (4..=31) for new passwords.
    pub fn open(state: &State, cost: u32) -> Result<UserStore, AuthError> {
        if !(4..=31).contains(&cost) {
            return Err(AuthError::InvalidCost(cost));
        }
        Ok(UserStore {
            tree: state.json_tree("users")?,
            cost,
            ttl: DEFAULT_CACHE_TTL,
            caches: Mutex::new(Caches::default()),
            dummy_hash: OnceLock::new(),
        })
    }

    /// Change how long successful verifications are remembered (zero: never).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> UserStore {
        self.ttl = ttl;
        self
    }

    fn caches(&self) -> MutexGuard<'_, Caches> {
        // The caches hold no invariant a panicking holder could break.
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        let mut c = self.caches();
        c.generation += 1;
        c.verified.clear();
        c.grants.clear();
    }

    fn hash(&self, password: &str) -> Result<String, AuthError> {
        if password.is_empty() {
            return Err(AuthError::EmptyPassword);
        }
        if !bcrypt_takes(password) {
            return Err(if password.contains('\0') {
                AuthError::PasswordHasNul
            } else {
                AuthError::PasswordTooLong(password.len())
            });
        }
        Ok(bcrypt::non_truncating_hash(password, self.cost)?)
    }

    /// Create a user. Fails if the name is taken or a grant does not parse.
    pub fn add<S: AsRef<str>>(
        &self,
        name: &str,
        password: &str,
        grants: &[S],
    ) -> Result<(), AuthError> {
        validate_user_name(name)?;
        parse_grants(grants)?;
        if self.tree.get::<UserRecord>(name)?.is_some() {
            return Err(AuthError::UserExists(name.to_string()));
        }
        let record = UserRecord {
            hash: self.hash(password)?,
            grants: grants
                .iter()
                .map(|g| g.as_ref().trim().to_string())
                .collect(),
            created: berth_state::now(),
        };
        self.tree.put(name, &record)?;
        self.changed();
        tracing::info!(user = name, grants = ?record.grants, "user added");
        Ok(())
    }

    fn existing(&self, name: &str) -> Result<UserRecord, AuthError> {
        self.tree
            .get::<UserRecord>(name)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))
    }

    /// Replace a user's password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AuthError> {
        let mut record = self.existing(name)?;
        record.hash = self.hash(password)?;
        self.tree.put(name, &record)?;
        self.changed();
        tracing::info!(user = name, "password changed");
        Ok(())
    }

    /// Replace a user's grants.
    pub fn set_grants<S: AsRef<str>>(&self, name: &str, grants: &[S]) -> Result<(), AuthError> {
        parse_grants(grants)?;
        let mut record = self.existing(name)?;
        record.grants = grants
            .iter()
            .map(|g| g.as_ref().trim().to_string())
            .collect();
        self.tree.put(name, &record)?;
        self.changed();
        tracing::info!(user = name, grants = ?record.grants, "grants changed");
        Ok(())
    }

    /// Remove a user.
    pub fn remove(&self, name: &str) -> Result<(), AuthError> {
        if !self.tree.remove(name)? {
            return Err(AuthError::NoSuchUser(name.to_string()));
        }
        self.changed();
        tracing::info!(user = name, "user removed");
        Ok(())
    }

    /// Every user, by name, without password hashes.
    pub fn list(&self) -> Result<Vec<UserInfo>, AuthError> {
        Ok(self
            .tree
            .list::<UserRecord>()?
            .into_iter()
            .map(|(name, r)| UserInfo {
                name,
                grants: r.grants,
                created: r.created,
            })
            .collect())
    }

    /// Whether a user exists.
    pub fn exists(&self, name: &str) -> Result<bool, AuthError> {
        Ok(self.tree.get::<UserRecord>(name)?.is_some())
    }

    /// The parsed grants of `name`, or `None` if there is no such user.
    pub fn grants(&self, name: &str) -> Result<Option<Arc<Vec<Grant>>>, AuthError> {
        let generation = {
            let c = self.caches();
            if let Some(g) = c.grants.get(name) {
                return Ok(Some(g.clone()));
            }
            c.generation
        };
        let Some(record) = self.tree.get::<UserRecord>(name)? else {
            return Ok(None);
        };
        let grants = Arc::new(parse_grants(&record.grants)?);
        let mut c = self.caches();
        if c.generation == generation {
            c.grants.insert(name.to_string(), grants.clone());
        }
        Ok(Some(grants))
    }

    /// Check a password. Blocks for one bcrypt verification unless the same
    /// user and password succeeded within the cache TTL.
    /// `name` with `password` as verified moments ago (within the cache's
    /// time to live), without verifying anything: `None` on a miss.
    pub fn cached(&self, name: &str, password: &str) -> Option<VerifiedUser> {
        let key = (name.to_string(), <[u8; 32]>::from(Sha256::digest(password)));
        let c = self.caches();
        c.verified
            .get(&key)
            .filter(|hit| hit.until > Instant::now())
            .map(|hit| VerifiedUser {
                name: name.to_string(),
                grants: hit.grants.clone(),
            })
    }

    pub fn verify(&self, name: &str, password: &str) -> Result<VerifiedUser, AuthError> {
        let key = (name.to_string(), <[u8; 32]>::from(Sha256::digest(password)));
        let generation = {
            let mut c = self.caches();
            let now = Instant::now();
            if let Some(hit) = c.verified.get(&key) {
                if hit.until > now {
                    return Ok(VerifiedUser {
                        name: name.to_string(),
                        grants: hit.grants.clone(),
                    });
                }
                c.verified.remove(&key);
            }
            c.generation
        };
        let record = if validate_user_name(name).is_ok() {
            self.tree.get::<UserRecord>(name)?
        } else {
            None
        };
        let Some(record) = record else {
            self.burn_time(password);
            tracing::debug!(user = name, "authentication failed: no such user");
            return Err(AuthError::InvalidCredentials);
        };
        // A password bcrypt cannot take is simply wrong, but it costs a full
        // verification all the same: answering at once would tell that the
        // user exists (an unknown one costs a bcrypt check). `verify`
        // truncates where `non_truncating_verify` would fail fast.
        let matches = bcrypt::verify(password, &record.hash).unwrap_or(false);
        if !(matches && bcrypt_takes(password)) {
            tracing::debug!(user = name, "authentication failed: wrong password");
            return Err(AuthError::InvalidCredentials);
        }
        let grants = Arc::new(parse_grants(&record.grants)?);
        if !self.ttl.is_zero() {
            let mut c = self.caches();
            if c.generation == generation {
                let now = Instant::now();
                // Bound the cache by dropping what has expired whenever it grows.
                if c.verified.len() >= 1024 {
                    c.verified.retain(|_, v| v.until > now);
                }
                c.verified.insert(
                    key,
                    Cached {
                        until: now + self.ttl,
                        grants: grants.clone(),
                    },
                );
            }
        }
        Ok(VerifiedUser {
            name: name.to_string(),
            grants,
        })
    }

    /// As long as a wrong password of a user that exists, so that unknown
    /// names cannot be told apart by timing.
    fn burn_time(&self, password: &str) {
        let dummy = self
            .dummy_hash
            .get_or_init(|| bcrypt::hash("berth-dummy-password", self.cost).unwrap_or_default());
        let _ = bcrypt::verify(password, dummy);
    }
}

/// Whether bcrypt hashes `password` whole. It reads at most 72 bytes, the
/// terminating NUL included, and repeats the key cyclically: a longer
/// password would be cut, and one with a NUL could equal a shorter one
/// (`ab\0ab` hashes as `ab`).
fn bcrypt_takes(password: &str) -> bool {
    password.len() < 72 && !password.contains('\0')
}
