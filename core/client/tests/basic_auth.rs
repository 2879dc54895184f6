//! HTTP basic auth against docker-registry's htpasswd backend, with login,
//! lookup and logout going through a docker config.json in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use base64::Engine;
use berth_client::{ClientError, CredentialStore, Credentials, Repository};
use berth_oci::Digest;
use common::{Registry, client_with_store, data};

#[tokio::test]
async fn login_push_pull_logout_through_config_json() {
    let reg = Registry::start_with_user("alice", "s3cret pass");
    let cfg = tempfile::tempdir().unwrap();
    let store = CredentialStore::at(cfg.path());
    let repo = Repository::new(&reg.addr, "private/app").unwrap();
    let blob = data(20_000, 11);
    let d = Digest::sha256_of(&blob);

    // Anonymous: refused, and told what to do.
    let c = client_with_store(store.clone());
    let err = c.blob_exists(&repo, &d).await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("berth login"), "{err}");

    // Wrong password: login fails and nothing is written.
    let err = c
        .login(&reg.addr, &Credentials::new("alice", "wrong"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::LoginFailed { .. }), "{err}");
    assert!(!store.config_path().exists());

    // Right password: stored docker-style, and used from then on.
    let creds = Credentials::new("alice", "s3cret pass");
    c.login(&reg.addr, &creds).await.unwrap();
    let text = std::fs::read_to_string(store.config_path()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let auth = v["auths"][reg.addr.as_str()]["auth"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap(),
        b"alice:s3cret pass"
    );
    assert_eq!(c.lookup(&reg.addr).await.unwrap(), Some(creds.clone()));
    c.upload_monolithic(
        &repo,
        &d,
        blob.len() as u64,
        std::io::Cursor::new(blob.clone()),
    )
    .await
    .unwrap();

    // A new client (a new process) finds the login in config.json and
    // streams uploads after its first challenge.
    let c2 = client_with_store(CredentialStore::at(cfg.path()));
    assert_eq!(
        c2.blob_exists(&repo, &d).await.unwrap().unwrap().size,
        20_000
    );
    let mut out = Vec::new();
    c2.get_blob(&repo, &d, None, &mut out).await.unwrap();
    assert_eq!(out, blob);
    let big = data(300_000, 12);
    let bd = Digest::sha256_of(&big);
    c2.upload_monolithic(&repo, &bd, big.len() as u64, std::io::Cursor::new(big))
        .await
        .unwrap();
    c2.upload_chunked(&repo, &Digest::sha256_of(b"tiny"), &b"tiny"[..])
        .await
        .unwrap();

    // Logout erases the entry; the next client is anonymous again.
    assert!(c2.logout(&reg.addr).await.unwrap());
    assert!(!c2.logout(&reg.addr).await.unwrap());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.config_path()).unwrap()).unwrap();
    assert!(v["auths"].get(reg.addr.as_str()).is_none());
    let c3 = client_with_store(CredentialStore::at(cfg.path()));
    assert!(matches!(
        c3.blob_exists(&repo, &d).await,
        Err(ClientError::Unauthorized { .. })
    ));
    // The same client forgets too.
    assert!(matches!(
        c2.blob_exists(&repo, &d).await,
        Err(ClientError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn login_to_an_open_registry_and_to_nothing() {
    let reg = Registry::start();
    let cfg = tempfile::tempdir().unwrap();
    let c = client_with_store(CredentialStore::at(cfg.path()));
    c.login(&reg.addr, &Credentials::new("u", "p"))
        .await
        .unwrap();
    // A port nobody listens on: a clear connection error, after retries.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let err = c
        .login(&dead, &Credentials::new("u", "p"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Http { .. }), "{err}");
}
