//! skopeo copies the multi-layer fixture `oci:` → berthd's registry → `oci:`, and the
//! manifest and every blob come back with the same digests; with auth none, basic and token.

use berth_e2e::http::Request;
use berth_e2e::{Berthd, fixture, suites};

#[test]
fn roundtrip_auth_none() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let image = fixture::small()?;
    suites::skopeo_roundtrip(&image, &daemon.registry(), "e2e/busybox", "v1", None)?;
    // The same image again under another repository and a nested name.
    suites::skopeo_roundtrip(
        &image,
        &daemon.registry(),
        "e2e/deeper/path/busybox",
        "v2",
        None,
    )?;
    // Tags list shows the tag.
    let r = Request::get("/v2/e2e/busybox/tags/list").send(daemon.addr)?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()?["tags"], serde_json::json!(["v1"]));
    Ok(())
}

/// Pushing as anonymous must fail, and so must a wrong password and a pull-only user.
fn check_auth_mode(auth: &str, challenge_scheme: &str) -> anyhow::Result<()> {
    let daemon = Berthd::start(&Berthd::config(auth, false))?;
    daemon.add_user("alice", "wonder land", &["pull,push,delete:*"])?;
    daemon.add_user("reader", "only-reads", &["pull:*"])?;
    let image = fixture::small()?;

    let r = Request::get("/v2/").send(daemon.addr)?;
    assert_eq!(
        r.status,
        401,
        "anonymous GET /v2/ with auth={auth}: {}",
        r.text()
    );
    let challenge = r.header("www-authenticate").unwrap_or_default().to_string();
    assert!(
        challenge
            .to_ascii_lowercase()
            .starts_with(&challenge_scheme.to_ascii_lowercase()),
        "WWW-Authenticate {challenge:?} (auth={auth})"
    );

    let target = format!("docker://{}/e2e/private:v1", daemon.registry());
    for creds in [None, Some("alice:wrong"), Some("reader:only-reads")] {
        let mut args = vec!["copy".to_string(), "--dest-tls-verify=false".into()];
        if let Some(c) = creds {
            args.push(format!("--dest-creds={c}"));
        }
        args.push(image.oci_ref());
        args.push(target.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = berth_e2e::skopeo(&refs)?;
        assert!(
            !out.status.success(),
            "push with {creds:?} succeeded under auth={auth}"
        );
    }

    suites::skopeo_roundtrip(
        &image,
        &daemon.registry(),
        "e2e/private",
        "v1",
        Some("alice:wonder land"),
    )?;
    // The pull-only user can pull what alice pushed.
    suites::pull_and_compare(
        &image,
        &daemon.registry(),
        "e2e/private",
        "v1",
        Some("reader:only-reads"),
    )?;
    // Anonymous pull is off.
    let out = berth_e2e::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/e2e/private:v1", daemon.registry()),
    ])?;
    assert!(
        !out.status.success(),
        "anonymous pull allowed with anonymous_pull = false"
    );
    Ok(())
}

#[test]
fn roundtrip_auth_basic() -> anyhow::Result<()> {
    check_auth_mode("basic", "Basic")
}

#[test]
fn roundtrip_auth_token() -> anyhow::Result<()> {
    check_auth_mode("token", "Bearer")
}
