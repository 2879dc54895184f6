#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! Every example plugin end to end through a real berthd: hooks on real
//! containers and pulls, an auth plugin in front of the registry with skopeo
//! as the client, a storage plugin under the registry, a scanner over an
//! image, and hostile plugins that must not take the daemon down.
//! Containers here use `--network none`: the tests run in parallel, each
//! with its own berthd, and these are about plugins, not the shared bridge.

use std::time::{Duration, Instant};

use berth_e2e::containers::{BUSYBOX, import_busybox};
use berth_e2e::{Berthd, fixture, suites};
use berth_plugin_artifacts as wasm;

fn install(daemon: &Berthd, args: &[&str]) -> String {
    let mut all = vec!["plugin", "install"];
    all.extend_from_slice(args);
    daemon.berth_ok(&all).unwrap()
}

/// One HTTP/1.1 request over the control socket: (status, body).
fn control(daemon: &Berthd, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berthd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn fails_with(daemon: &Berthd, args: &[&str]) -> String {
    let out = daemon.berth(args).unwrap();
    assert!(!out.status.success(), "berth {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn deny_root_and_default_limits_judge_real_containers() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    install(&daemon, &[wasm::DENY_ROOT]);
    install(
        &daemon,
        &[
            wasm::DEFAULT_LIMITS,
            "--config",
            r#"{"memory": "96m", "pids": 77}"#,
        ],
    );
    let ls = daemon.berth_ok(&["plugin", "ls"])?;
    assert!(
        ls.contains("deny-root") && ls.contains("default-limits"),
        "{ls}"
    );

    // Root is refused, with the plugin's reason, and nothing is left behind.
    let err = fails_with(
        &daemon,
        &["run", "--rm", "--network", "none", BUSYBOX, "id"],
    );
    assert!(err.contains("deny-root"), "{err}");
    assert!(err.contains("root"), "{err}");
    assert!(daemon.berth_ok(&["ps", "-a", "-q"])?.trim().is_empty());

    // A non-root user runs; so does root with the opt-out label.
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "65534",
        BUSYBOX,
        "id",
        "-u",
    ])?;
    assert_eq!(out.trim(), "65534");
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-l",
        "berth.policy/allow-root=true",
        BUSYBOX,
        "id",
        "-u",
    ])?;
    assert_eq!(out.trim(), "0");

    // default-limits gave the container limits it was not given.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "limited",
        "-u",
        "65534",
        BUSYBOX,
        "sleep",
        "30",
    ])?;
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["inspect", "limited"])?)?;
    let text = inspect.to_string();
    assert!(
        text.contains(&(96u64 << 20).to_string()),
        "memory limit in inspect: {text}"
    );
    assert!(text.contains("77"), "pids limit in inspect: {text}");
    // A user-given limit is left alone.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "own",
        "-u",
        "65534",
        "--memory",
        "64m",
        BUSYBOX,
        "sleep",
        "30",
    ])?;
    let own = daemon.berth_ok(&["inspect", "own"])?;
    assert!(own.contains(&(64u64 << 20).to_string()), "{own}");
    daemon.berth_ok(&["rm", "-f", "limited", "own"])?;

    // Disabled, the policy no longer applies; enabled again, it does.
    daemon.berth_ok(&["plugin", "disable", "deny-root"])?;
    daemon.berth_ok(&["run", "--rm", "--network", "none", BUSYBOX, "true"])?;
    daemon.berth_ok(&["plugin", "enable", "deny-root"])?;
    fails_with(
        &daemon,
        &["run", "--rm", "--network", "none", BUSYBOX, "true"],
    );

    // Installed plugins come back after a restart.
    let mut daemon = daemon;
    daemon.restart()?;
    let err = fails_with(
        &daemon,
        &["run", "--rm", "--network", "none", BUSYBOX, "true"],
    );
    assert!(err.contains("deny-root"), "{err}");
    let inspect = daemon.berth_ok(&["plugin", "inspect", "deny-root"])?;
    assert!(inspect.contains("\"calls\""), "{inspect}");
    Ok(())
}

#[test]
fn allowed_registries_refuses_pulls_from_elsewhere() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let image = fixture::small()?;
    berth_e2e::skopeo::copy(
        &image.oci_ref(),
        &format!("docker://{}/e2e/app:1", daemon.registry()),
        None,
        None,
    )?;
    install(
        &daemon,
        &[
            wasm::ALLOWED_REGISTRIES,
            "--config",
            r#"{"registries": ["registry.example.com"]}"#,
        ],
    );
    let reference = format!("{}/e2e/app:1", daemon.registry());
    let err = fails_with(&daemon, &["pull", &reference]);
    assert!(err.contains("allowed-registries"), "{err}");
    assert!(
        err.contains("registry.example.com"),
        "the reason lists what is allowed: {err}"
    );

    let spec = format!(
        r#"{{"name":"allowed-registries","kind":"lifecycle-hook","source":"{}","config":{{"registries":["127.0.0.1:*"]}}}}"#,
        wasm::ALLOWED_REGISTRIES
    );
    // Reload with a new configuration through the API.
    let (status, body) = control(
        &daemon,
        "POST",
        "/v1/plugins/allowed-registries/reload",
        spec.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    daemon.berth_ok(&["pull", &reference])?;
    Ok(())
}

#[test]
fn scan_lists_the_packages_of_an_image() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let err = fails_with(&daemon, &["scan", BUSYBOX]);
    assert!(err.contains("no scanner plugin"), "{err}");
    install(&daemon, &[wasm::PKG_INVENTORY, "--kind", "scanner"]);
    let out = daemon.berth_ok(&["scan", BUSYBOX])?;
    assert!(out.contains("busybox"), "{out}");
    let version =
        String::from_utf8_lossy(&std::process::Command::new("/bin/busybox").output()?.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .trim_start_matches('v')
            .to_string();
    assert!(!version.is_empty());
    assert!(out.contains(&version), "busybox {version} in {out}");
    Ok(())
}

fn htpasswd_line(user: &str, password: &str) -> String {
    let out = std::process::Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A berthd whose registry is judged by htpasswd-rbac: an htpasswd file of
/// `users` (granted read-only), `plugin_config` (rules…) appended to the
/// plugin's table, `extra` appended to the daemon's configuration.
fn rbac_daemon(
    users: &[(&str, &str)],
    plugin_config: &str,
    extra: &str,
) -> anyhow::Result<(Berthd, tempfile::TempDir)> {
    let auth_dir = tempfile::tempdir()?;
    let lines: Vec<String> = users.iter().map(|(u, p)| htpasswd_line(u, p)).collect();
    std::fs::write(auth_dir.path().join("htpasswd"), lines.join("\n") + "\n")?;
    let config = format!(
        r#"[registry]
auth = "basic"
{extra}
[[plugin]]
name = "htpasswd-rbac"
kind = "auth-provider"
source = "{wasm}"
[plugin.grants]
dirs = [{{ host = "{dir}", guest = "/auth", access = "ro" }}]
[plugin.config]
htpasswd = "/auth/htpasswd"
{plugin_config}
"#,
        wasm = wasm::HTPASSWD_RBAC,
        dir = auth_dir.path().display()
    );
    Ok((Berthd::start(&config)?, auth_dir))
}

#[test]
fn htpasswd_rbac_denies_then_allows_a_push() -> anyhow::Result<()> {
    let (daemon, _auth) = rbac_daemon(
        &[("alice", "alice-pw"), ("reader", "reader-pw")],
        r#"rules = [
  { users = ["alice"], repositories = "team/*", actions = ["pull", "push"] },
  { users = ["reader"], repositories = "*", actions = ["pull"] },
]
anonymous = [{ repositories = "public/*", actions = ["pull"] }]"#,
        "",
    )?;
    let image = fixture::small()?;
    let push = |repo: &str, creds: &str| {
        berth_e2e::skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("--dest-creds={creds}"),
            &image.oci_ref(),
            &format!("docker://{}/{repo}:1", daemon.registry()),
        ])
        .unwrap()
    };
    let denied = push("team/app", "reader:reader-pw");
    assert!(!denied.status.success(), "a pull-only user must not push");
    let wrong = push("team/app", "alice:nope");
    assert!(!wrong.status.success(), "a wrong password must not push");
    let outside = push("other/app", "alice:alice-pw");
    assert!(!outside.status.success(), "alice may push team/* only");
    suites::skopeo_roundtrip(
        &image,
        &daemon.registry(),
        "team/app",
        "1",
        Some("alice:alice-pw"),
    )?;
    let (_, metrics) = control(&daemon, "GET", "/metrics", b"");
    assert!(
        metrics.contains("htpasswd-rbac"),
        "plugin metrics on /metrics: {metrics}"
    );
    Ok(())
}

#[test]
fn dir_storage_keeps_the_registry_blobs_in_the_granted_directory() -> anyhow::Result<()> {
    let store = tempfile::tempdir()?;
    let config = format!(
        r#"[registry]
auth = "none"
anonymous_pull = true
storage = "dir-storage"

[[plugin]]
name = "dir-storage"
kind = "storage-backend"
source = "{wasm}"
[plugin.config]
root = "/data"
[plugin.grants]
dirs = [{{ host = "{dir}", guest = "/data", access = "rw" }}]
"#,
        wasm = wasm::DIR_STORAGE,
        dir = store.path().display()
    );
    let daemon = Berthd::start(&config)?;
    let image = fixture::small()?;
    suites::skopeo_roundtrip(&image, &daemon.registry(), "e2e/stored", "1", None)?;
    for digest in image.blobs.iter().chain([&image.manifest_digest]) {
        let hex = digest.trim_start_matches("sha256:");
        let path = store.path().join("blobs/sha256").join(hex);
        assert!(path.exists(), "{digest} in the plugin's directory");
        assert_eq!(&berth_e2e::sha256_file(&path)?, digest);
    }
    // Blobs only the plugin has (the local cache removed) still pull,
    // verified on the way back.
    let mut daemon = daemon;
    daemon.stop();
    std::fs::remove_dir_all(daemon.root.join("content/blobs/sha256"))?;
    std::fs::create_dir_all(daemon.root.join("content/blobs/sha256"))?;
    daemon.restart()?;
    suites::pull_and_compare(&image, &daemon.registry(), "e2e/stored", "1", None)?;
    Ok(())
}

#[test]
fn a_spinning_hook_times_out_fails_closed_and_the_daemon_keeps_serving() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    install(
        &daemon,
        &[wasm::FIXTURE_SPIN, "--name", "spin", "--timeout-ms", "200"],
    );
    let start = Instant::now();
    let err = fails_with(
        &daemon,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "65534",
            BUSYBOX,
            "true",
        ],
    );
    let took = start.elapsed();
    assert!(err.contains("spin"), "{err}");
    assert!(
        took < Duration::from_secs(5),
        "denied after {took:?}; the hook's deadline is 200 ms"
    );
    // The daemon still serves, and with the hook failing open the run goes on.
    daemon.berth_ok(&["images"])?;
    daemon.berth_ok(&["plugin", "rm", "spin"])?;
    install(
        &daemon,
        &[
            wasm::FIXTURE_PANIC,
            "--name",
            "panicky",
            "--on-failure",
            "open",
        ],
    );
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "65534",
        BUSYBOX,
        "true",
    ])?;
    let inspect = daemon.berth_ok(&["plugin", "inspect", "panicky"])?;
    let v: serde_json::Value = serde_json::from_str(&inspect)?;
    assert!(
        v["metrics"]["errors"].as_u64().unwrap_or(0) >= 1,
        "{inspect}"
    );
    Ok(())
}

#[test]
fn the_control_api_on_tcp_asks_the_auth_plugin() -> anyhow::Result<()> {
    let control = berth_e2e::net::free_addr()?;
    let (daemon, _auth) = rbac_daemon(
        &[("ops", "ops-pw"), ("dev", "dev-pw")],
        r#"rules = [
  { users = ["ops"], repositories = "/v1/*", actions = ["admin"] },
  { users = ["dev"], repositories = "*", actions = ["pull"] },
]"#,
        &format!("[control]\nlisten = \"{control}\"\n"),
    )?;
    use berth_e2e::http::Request;
    let anonymous = Request::get("/v1/plugins").send(control)?;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert!(anonymous.header("www-authenticate").is_some());
    let dev = Request::get("/v1/plugins")
        .basic_auth("dev", "dev-pw")
        .send(control)?;
    assert_eq!(dev.status, 403, "dev has no admin rule: {}", dev.text());
    let wrong = Request::get("/v1/plugins")
        .basic_auth("ops", "nope")
        .send(control)?;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let ops = Request::get("/v1/plugins")
        .basic_auth("ops", "ops-pw")
        .send(control)?;
    assert_eq!(ops.status, 200, "{}", ops.text());
    assert!(ops.text().contains("htpasswd-rbac"), "{}", ops.text());
    // The unix socket stays as it was (root-only, no credentials).
    daemon.berth_ok(&["plugin", "ls"])?;
    Ok(())
}

#[test]
fn a_plugin_pushed_as_an_oci_artifact_installs_by_digest() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let target = format!("{}/plugins/deny-root:1", daemon.registry());
    let pinned = daemon.berth_ok(&["plugin", "push", wasm::DENY_ROOT, &target])?;
    let pinned = pinned.trim();
    assert!(pinned.contains("@sha256:"), "{pinned}");
    // A tag is refused: a policy must not change under the daemon.
    let by_tag = fails_with(&daemon, &["plugin", "install", &target]);
    assert!(by_tag.contains("pinned by digest"), "{by_tag}");
    install(&daemon, &[pinned]);
    let info: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["plugin", "inspect", "deny-root"])?)?;
    let local = berth_e2e::sha256_file(std::path::Path::new(wasm::DENY_ROOT))?;
    assert_eq!(info["digest"].as_str(), Some(local.as_str()));
    let err = fails_with(
        &daemon,
        &["run", "--rm", "--network", "none", BUSYBOX, "true"],
    );
    assert!(err.contains("deny-root"), "{err}");
    Ok(())
}

#[test]
fn reloading_the_auth_plugin_under_pushes_loses_no_request() -> anyhow::Result<()> {
    let (daemon, _auth) = rbac_daemon(
        &[("alice", "alice-pw")],
        r#"rules = [{ users = ["alice"], repositories = "team/*", actions = ["pull", "push"] }]"#,
        "",
    )?;
    let registry = daemon.registry();
    let pushes = std::thread::spawn(move || {
        let mut failures = Vec::new();
        for i in 0..4 {
            let image = fixture::variant(i).unwrap();
            let out = berth_e2e::skopeo(&[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds=alice:alice-pw",
                &image.oci_ref(),
                &format!("docker://{registry}/team/app{i}:1"),
            ])
            .unwrap();
            if !out.status.success() {
                failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
            }
        }
        failures
    });
    let mut reloads = 0;
    while !pushes.is_finished() {
        daemon.berth_ok(&["plugin", "reload", "htpasswd-rbac"])?;
        reloads += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let failures = pushes.join().unwrap();
    assert!(
        failures.is_empty(),
        "pushes failed during {reloads} reloads: {failures:?}"
    );
    assert!(
        reloads >= 3,
        "only {reloads} reloads happened during the pushes"
    );
    Ok(())
}

#[test]
fn images_pushed_to_the_registry_are_scanned() -> anyhow::Result<()> {
    let config = format!(
        "{}\n[scan]\non_push = true\n\n[[plugin]]\nname = \"pkg-inventory\"\nkind = \"scanner\"\nsource = \"{}\"\n",
        Berthd::CONFIG_AUTH_NONE,
        wasm::PKG_INVENTORY
    );
    let daemon = Berthd::start(&config)?;
    let image = fixture::small()?;
    berth_e2e::skopeo::copy(
        &image.oci_ref(),
        &format!("docker://{}/e2e/scanned:1", daemon.registry()),
        None,
        None,
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let out = daemon.berth(&["scan", "--json", &image.manifest_digest])?;
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "no scan report within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    let v: serde_json::Value = serde_json::from_str(&report)?;
    assert_eq!(v["repository"], "e2e/scanned");
    let findings = v["reports"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        findings.iter().any(|f| f["package"] == "busybox"),
        "the fixture's busybox is found: {report}"
    );
    Ok(())
}
