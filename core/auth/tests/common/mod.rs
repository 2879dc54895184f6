//! Helpers shared by the integration tests: a real sled in a tempdir.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_auth::{AuthConfig, AuthService, Mode};
use berth_state::State;

pub const REALM: &str = "http://127.0.0.1:5000/v2/token";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub state: State,
    pub auth: AuthService,
}

pub fn config(mode: Mode, anonymous_pull: bool) -> AuthConfig {
    AuthConfig {
        mode,
        anonymous_pull,
        token_ttl_secs: 300,
        realm: REALM.to_string(),
        service: "berth".to_string(),
        ..AuthConfig::default()
    }
}

pub fn env_with(config: AuthConfig) -> anyhow::Result<Env> {
    let dir = tempfile::tempdir()?;
    let state = State::open(dir.path().join("state"))?;
    // The lowest cost bcrypt allows keeps the tests fast.
    let auth = AuthService::open_with_cost(&state, config, 4)?;
    auth.users()
        .add("alice", "alice-pw", &["pull,push:team/*", "pull:*"])?;
    auth.users().add("bob", "bob:pw", &["pull:*"])?;
    auth.users().add("root", "root-pw", &["admin"])?;
    auth.users().add("all", "all-pw", &["*:*"])?;
    Ok(Env { dir, state, auth })
}

pub fn env(mode: Mode, anonymous_pull: bool) -> anyhow::Result<Env> {
    env_with(config(mode, anonymous_pull))
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
