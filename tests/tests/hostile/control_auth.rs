//! The control API on TCP (`--control-listen`) against a client that has
//! some right, or none, and tries for more: registry bearer tokens offered
//! as control credentials, read-only users asking to run containers, auth
//! plugins that must be told what a control request can do, a client that
//! trickles its headers, and password guessing (by volume, and by timing a
//! long password to learn whether a user exists).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};
use berth_e2e::http::{Request, Response};
use berth_plugin_artifacts as wasm;

/// A run request that would create a container if it were let through.
fn run_body() -> String {
    format!(
        r#"{{"image":"{BUSYBOX}","cmd":["true"],"detach":true,"network":"none","privileged":true}}"#
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `[control] listen` on a free loopback port, with `registry` settings.
fn daemon_with_control(registry: &str) -> anyhow::Result<(Berthd, SocketAddr)> {
    let control = berth_e2e::net::free_addr()?;
    let config = format!("[registry]\n{registry}\n[control]\nlisten = \"{control}\"\n");
    Ok((Berthd::start(&config)?, control))
}

/// A token from the daemon's `/token` for `scope`, as `user`.
fn token(daemon: &Berthd, user: &str, password: &str, scope: &str) -> anyhow::Result<String> {
    let r = Request::get(&format!("/token?service=berth&scope={scope}"))
        .basic_auth(user, password)
        .send(daemon.addr)?;
    anyhow::ensure!(
        r.status == 200,
        "token for {scope}: {} {}",
        r.status,
        r.text()
    );
    Ok(r.json()?["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token in {}", r.text()))?
        .to_string())
}

/// The `message` of a control API error.
fn message(r: &Response) -> anyhow::Result<String> {
    Ok(r.json()?["message"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn no_containers(daemon: &Berthd) -> anyhow::Result<()> {
    let ps = daemon.berth_ok(&["ps", "-a", "-q"])?;
    anyhow::ensure!(ps.trim().is_empty(), "a container was created: {ps}");
    Ok(())
}

#[test]
fn registry_tokens_do_not_open_the_control_api() -> anyhow::Result<()> {
    let (daemon, control) =
        daemon_with_control("auth = \"token\"\nanonymous_pull = false\ntoken_ttl_secs = 300")?;
    import_busybox(&daemon)?;
    daemon.add_user("root", "root-pw", &["admin"])?;
    daemon.add_user("dev", "dev-pw", &["pull,push:team/*"])?;
    let catalog = token(&daemon, "root", "root-pw", "registry:catalog:*")?;
    let push = token(&daemon, "dev", "dev-pw", "repository:team/app:pull,push")?;
    // The tokens are good where they belong.
    let listed = Request::get("/v2/_catalog")
        .header("Authorization", &bearer(&catalog))
        .send(daemon.addr)?;
    assert_eq!(listed.status, 200, "{}", listed.text());

    for (what, t) in [("catalog", &catalog), ("push", &push)] {
        let list = Request::get("/v1/containers")
            .header("Authorization", &bearer(t))
            .send(control)?;
        assert_eq!(
            list.status,
            401,
            "a registry {what} token listed containers: {}",
            list.text()
        );
        assert!(
            list.text().contains("token") && list.text().contains("basic"),
            "the refusal says why and what to send: {}",
            list.text()
        );
        assert!(
            list.header("www-authenticate")
                .is_some_and(|c| c.starts_with("Basic")),
            "{:?}",
            list.headers
        );
        let run = Request::post("/v1/containers")
            .header("Authorization", &bearer(t))
            .header("Content-Type", "application/json")
            .body(run_body())
            .send(control)?;
        assert_eq!(
            run.status,
            401,
            "a registry {what} token ran a container: {}",
            run.text()
        );
    }
    no_containers(&daemon)?;
    // The admin's own password still works there.
    let root = Request::get("/v1/containers")
        .basic_auth("root", "root-pw")
        .send(control)?;
    assert_eq!(root.status, 200, "{}", root.text());
    Ok(())
}

#[test]
fn a_read_only_native_user_reads_but_cannot_run() -> anyhow::Result<()> {
    let (daemon, control) = daemon_with_control("auth = \"basic\"")?;
    import_busybox(&daemon)?;
    daemon.add_user("viewer", "viewer-pw", &["control:read"])?;
    daemon.add_user("operator", "operator-pw", &["control:write"])?;
    daemon.add_user("puller", "puller-pw", &["*:*"])?;
    let get = |user: &str, password: &str, path: &str| {
        Request::get(path).basic_auth(user, password).send(control)
    };
    let run = |user: &str, password: &str| {
        Request::post("/v1/containers")
            .basic_auth(user, password)
            .header("Content-Type", "application/json")
            .body(run_body())
            .send(control)
    };

    for (user, password) in [("viewer", "viewer-pw"), ("operator", "operator-pw")] {
        let list = get(user, password, "/v1/containers")?;
        assert_eq!(list.status, 200, "{user}: {}", list.text());
        assert!(list.json()?.is_array(), "{}", list.text());
        // Authorised by route, not by the raw path: an id gets past the
        // guard to the handler, which does not know it.
        let one = get(user, password, "/v1/containers/no-such-container")?;
        assert_eq!(one.status, 404, "{user}: {}", one.text());

        let refused = run(user, password)?;
        assert_eq!(
            refused.status,
            403,
            "{user} ran a container: {}",
            refused.text()
        );
        assert!(
            refused.text().contains("POST /v1/containers") && refused.text().contains("admin"),
            "the refusal names the operation and the grant it needs: {}",
            refused.text()
        );
    }
    no_containers(&daemon)?;
    // Writes without root are control:write's, not control:read's.
    let stop = |user: &str, password: &str| {
        Request::post("/v1/containers/no-such-container/stop")
            .basic_auth(user, password)
            .send(control)
    };
    assert_eq!(stop("viewer", "viewer-pw")?.status, 403);
    assert_eq!(stop("operator", "operator-pw")?.status, 404);
    // Repository rights, even on everything, are no control rights.
    let puller = get("puller", "puller-pw", "/v1/containers")?;
    assert_eq!(puller.status, 403, "{}", puller.text());
    Ok(())
}

#[test]
fn a_write_grant_cannot_create_a_network_but_admin_can() -> anyhow::Result<()> {
    let (daemon, control) = daemon_with_control("auth = \"basic\"")?;
    daemon.add_user("operator", "operator-pw", &["control:write"])?;
    daemon.add_user("root", "root-pw", &["admin"])?;
    // A subnet over the host's own would cut the host off once a container
    // attaches: making a network is an admin's decision.
    let create = |user: &str, password: &str, name: &str| {
        Request::post("/v1/networks")
            .basic_auth(user, password)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"name":"{name}","subnet":"10.77.0.0/24"}}"#))
            .send(control)
    };
    let networks = |user: &str, password: &str| -> anyhow::Result<String> {
        let r = Request::get("/v1/networks")
            .basic_auth(user, password)
            .send(control)?;
        anyhow::ensure!(r.status == 200, "network list: {} {}", r.status, r.text());
        Ok(r.text())
    };

    let refused = create("operator", "operator-pw", "operator-net")?;
    assert_eq!(
        refused.status,
        403,
        "control:write created a network: {}",
        refused.text()
    );
    assert!(
        refused.text().contains("POST /v1/networks") && refused.text().contains("admin"),
        "the refusal names the operation and the grant it needs: {}",
        refused.text()
    );
    // The write grant still lists networks, and nothing was made.
    let listed = networks("operator", "operator-pw")?;
    assert!(!listed.contains("operator-net"), "{listed}");

    let made = create("root", "root-pw", "admin-net")?;
    assert_eq!(made.status, 201, "admin: {}", made.text());
    let listed = networks("root", "root-pw")?;
    assert!(listed.contains("admin-net"), "{listed}");
    // Removing one stays a removal, which control:write may do.
    let removed = Request::delete("/v1/networks/admin-net")
        .basic_auth("operator", "operator-pw")
        .send(control)?;
    assert_eq!(removed.status, 204, "{}", removed.text());
    Ok(())
}

/// An htpasswd line for `user` (bcrypt, as htpasswd-rbac requires).
fn htpasswd_line(user: &str, password: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()?;
    anyhow::ensure!(out.status.success(), "htpasswd -Bbn failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

#[test]
fn an_auth_plugin_is_asked_about_control_operations_by_class() -> anyhow::Result<()> {
    let auth_dir = tempfile::tempdir()?;
    let mut lines = Vec::new();
    for (user, password) in [("viewer", "v-pw"), ("ops", "o-pw"), ("dev", "d-pw")] {
        lines.push(htpasswd_line(user, password)?);
    }
    std::fs::write(auth_dir.path().join("htpasswd"), lines.join("\n") + "\n")?;
    let control = berth_e2e::net::free_addr()?;
    // htpasswd-rbac grants `control` rules on targets of kind "control"
    // only, and repository rules on kind "repository" only: what it allows
    // tells which kind and action berthd asked about.
    let config = format!(
        r#"[registry]
auth = "basic"
[control]
listen = "{control}"
[[plugin]]
name = "htpasswd-rbac"
kind = "auth-provider"
source = "{wasm}"
timeout_ms = 5000
[plugin.grants]
dirs = [{{ host = "{dir}", guest = "/auth", access = "ro" }}]
[plugin.config]
htpasswd = "/auth/htpasswd"
rules = [
  {{ users = ["viewer"], control = "*", actions = ["pull"] }},
  {{ users = ["ops"], control = "*", actions = ["admin"] }},
  {{ users = ["dev"], repositories = "*", actions = ["pull", "push", "delete"] }},
]
"#,
        wasm = wasm::HTPASSWD_RBAC,
        dir = auth_dir.path().display()
    );
    let daemon = Berthd::start(&config)?;
    import_busybox(&daemon)?;
    let send = |req: Request, user: &str, password: &str| -> anyhow::Result<Response> {
        req.basic_auth(user, password).send(control)
    };
    let run = || {
        Request::post("/v1/containers")
            .header("Content-Type", "application/json")
            .body(run_body())
    };

    let list = send(Request::get("/v1/containers"), "viewer", "v-pw")?;
    assert_eq!(list.status, 200, "GET is a read (pull): {}", list.text());
    let refused = send(run(), "viewer", "v-pw")?;
    assert_eq!(refused.status, 403, "{}", refused.text());
    // The plugin's own reason names what it was asked.
    let reason = message(&refused)?;
    assert!(
        reason.contains(r#"admin control "POST /v1/containers""#),
        "{reason}"
    );
    no_containers(&daemon)?;
    let dev = send(Request::get("/v1/containers"), "dev", "d-pw")?;
    assert_eq!(
        dev.status,
        403,
        "repository rules open no control: {}",
        dev.text()
    );
    let reason = message(&dev)?;
    assert!(
        reason.contains(r#"pull control "GET /v1/containers""#),
        "{reason}"
    );

    // Root-granting operations are the admin's.
    let created = send(run(), "ops", "o-pw")?;
    assert!(
        created.status / 100 == 2,
        "ops may run: {} {}",
        created.status,
        created.text()
    );
    Ok(())
}

#[test]
fn a_client_trickling_headers_on_the_control_port_is_cut_off() -> anyhow::Result<()> {
    let (daemon, control) = daemon_with_control("auth = \"basic\"")?;
    let mut slow = TcpStream::connect(control)?;
    slow.set_read_timeout(Some(Duration::from_secs(1)))?;
    slow.write_all(b"GET /v1/info HTTP/1.1\r\nHost: berthd\r\n")?;
    let start = Instant::now();
    let mut closed = false;
    // A header byte a second: the head never ends.
    while start.elapsed() < Duration::from_secs(50) {
        if slow.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match slow.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            // hyper may answer 408 before closing.
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        // Meanwhile others are served.
        if start.elapsed() < Duration::from_secs(2) {
            let other = Request::get("/v1/info").send(control)?;
            assert_eq!(other.status, 401, "{}", other.text());
        }
    }
    assert!(
        closed,
        "a connection whose request head never ended was held {:?}",
        start.elapsed()
    );
    let ok = Request::get("/v1/info").send(control)?;
    assert_eq!(ok.status, 401, "still serving: {}", ok.text());
    drop(daemon);
    Ok(())
}

#[test]
fn wrong_passwords_lock_the_client_out_even_with_the_right_one() -> anyhow::Result<()> {
    let (daemon, control) = daemon_with_control(
        "auth = \"basic\"\nmax_failed_logins = 10\nfailed_login_window_secs = 8",
    )?;
    daemon.add_user("alice", "alice-pw", &["pull,push:*", "admin"])?;
    let ping = |password: &str| -> anyhow::Result<(Response, Duration)> {
        let t = Instant::now();
        let r = Request::get("/v2/")
            .basic_auth("alice", password)
            .send(daemon.addr)?;
        Ok((r, t.elapsed()))
    };
    let mut statuses = Vec::new();
    let (mut wrong, mut throttled) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let (r, took) = ping(&format!("guess-{i}"))?;
        statuses.push(r.status);
        match r.status {
            401 => wrong.push(took),
            429 => {
                let after: u64 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                assert!((1..=8).contains(&after), "Retry-After {after}");
                assert_eq!(r.error_codes(), ["TOOMANYREQUESTS"], "{}", r.text());
                throttled.push(took);
            }
            other => panic!("guess {i}: {other} {}", r.text()),
        }
    }
    assert_eq!(wrong.len(), 10, "{statuses:?}");
    assert_eq!(throttled.len(), 10, "{statuses:?}");
    // Refused without bcrypt: far faster than a checked guess.
    wrong.sort();
    throttled.sort();
    let (checked, refused) = (wrong[wrong.len() / 2], throttled[throttled.len() / 2]);
    assert!(
        refused * 4 < checked,
        "a refused guess took {refused:?}, a checked one {checked:?}"
    );

    // The right password is refused too, on the registry and the control API.
    let (right, _) = ping("alice-pw")?;
    assert_eq!(right.status, 429, "{}", right.text());
    let ctl = Request::get("/v1/containers")
        .basic_auth("alice", "alice-pw")
        .send(control)?;
    assert_eq!(ctl.status, 429, "{}", ctl.text());
    let wait: u64 = ctl
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no Retry-After on the control API's 429"))?;

    // Once the window has passed, it works again.
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(200));
    let (right, _) = ping("alice-pw")?;
    assert_eq!(right.status, 200, "{}", right.text());
    let ctl = Request::get("/v1/containers")
        .basic_auth("alice", "alice-pw")
        .send(control)?;
    assert_eq!(ctl.status, 200, "{}", ctl.text());
    Ok(())
}

#[test]
fn a_long_password_does_not_tell_whether_the_user_exists() -> anyhow::Result<()> {
    let daemon = Berthd::start("[registry]\nauth = \"basic\"\nmax_failed_logins = 0\n")?;
    daemon.add_user("alice", "alice-pw", &["pull:*"])?;
    let long = "L".repeat(80);
    let time = |user: &str, password: &str| -> anyhow::Result<Duration> {
        let t = Instant::now();
        let r = Request::get("/v2/")
            .basic_auth(user, password)
            .send(daemon.addr)?;
        anyhow::ensure!(r.status == 401, "{user}: {} {}", r.status, r.text());
        Ok(t.elapsed())
    };
    // Interleaved, so that load on the machine falls on all three alike.
    let (mut wrong, mut known_long, mut unknown_long) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        wrong.push(time("alice", "wrong")?);
        known_long.push(time("alice", &long)?);
        unknown_long.push(time("mallory", &long)?);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let wrong = median(&mut wrong);
    for (what, mut v) in [("alice", known_long), ("an unknown user", unknown_long)] {
        let took = median(&mut v);
        assert!(
            took * 2 >= wrong,
            "an 80-byte password for {what} took {took:?}, a wrong short one {wrong:?}: \
             the time tells whether the user exists"
        );
    }
    Ok(())
}
