//! `$DOCKER_CONFIG` is honoured. Alone in its own test binary because it
//! changes the process environment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use berth_client::{CredentialStore, Credentials};

#[test]
fn docker_config_env_points_the_store_at_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths":{"reg.example:5000":{"auth":"Ym9iOnB3"}}}"#,
    )
    .unwrap();
    // SAFETY: this binary has this single test and starts no other threads,
    // so nothing reads the environment concurrently.
    unsafe { std::env::set_var("DOCKER_CONFIG", dir.path()) };
    let store = CredentialStore::from_env().unwrap();
    assert_eq!(store.config_path(), dir.path().join("config.json"));
    assert_eq!(
        store.get("reg.example:5000").unwrap(),
        Some(Credentials::new("bob", "pw"))
    );
}
