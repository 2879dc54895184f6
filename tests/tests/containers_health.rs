#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! Health checks on real containers: starting → healthy → unhealthy,
//! timeouts, the image's HEALTHCHECK and `--no-healthcheck`, `ps` and
//! `inspect`, and checks resumed by a restarted daemon.

use std::time::{Duration, Instant};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox, import_busybox_as};

fn inspect(daemon: &Berthd, name: &str) -> serde_json::Value {
    serde_json::from_str(&daemon.berth_ok(&["inspect", name]).unwrap()).unwrap()
}

fn health(daemon: &Berthd, name: &str) -> String {
    inspect(daemon, name)["State"]["Health"]["Status"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn wait_for(daemon: &Berthd, name: &str, status: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = inspect(daemon, name);
        if v["State"]["Health"]["Status"] == status {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became {status}:\n{:#}",
            v["State"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ps_line(daemon: &Berthd, name: &str) -> String {
    daemon
        .berth_ok(&["ps"])
        .unwrap()
        .lines()
        .find(|l| l.ends_with(name))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn health_goes_starting_healthy_unhealthy_and_survives_a_restart() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "--health-cmd",
        "echo checking; test -e /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "--health-start-period",
        "20s",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 2; touch /tmp/ok; exec sleep 300",
    ])?;
    // Before the first check: starting.
    assert_eq!(health(&daemon, "hc"), "starting");
    assert!(
        ps_line(&daemon, "hc").contains("(health: starting)"),
        "{}",
        ps_line(&daemon, "hc")
    );
    let v = inspect(&daemon, "hc");
    assert_eq!(v["healthcheck"]["retries"], 2, "{v:#}");
    assert_eq!(v["healthcheck"]["timeout"]["secs"], 30, "{v:#}");

    let v = wait_for(&daemon, "hc", "healthy");
    let log = v["State"]["Health"]["Log"].as_array().unwrap();
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 0, "{last:#}");
    assert_eq!(last["Output"], "checking\n", "{last:#}");
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    assert!(log.len() <= 5);
    let line = ps_line(&daemon, "hc");
    assert!(line.contains("Up ") && line.contains("(healthy)"), "{line}");

    // The check starts failing: unhealthy after 2 failures in a row.
    daemon.berth_ok(&["exec", "hc", "rm", "/tmp/ok"])?;
    let v = wait_for(&daemon, "hc", "unhealthy");
    assert!(
        v["State"]["Health"]["FailingStreak"].as_u64().unwrap() >= 2,
        "{v:#}"
    );
    assert_eq!(
        v["State"]["Health"]["Log"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["ExitCode"],
        1
    );
    assert!(ps_line(&daemon, "hc").contains("(unhealthy)"));

    // A daemon killed and restarted keeps the state and checks on.
    daemon.kill9();
    daemon.restart()?;
    assert_eq!(health(&daemon, "hc"), "unhealthy");
    daemon.berth_ok(&["exec", "hc", "touch", "/tmp/ok"])?;
    wait_for(&daemon, "hc", "healthy");
    daemon.berth_ok(&["rm", "-f", "hc"])?;
    Ok(())
}

#[test]
fn timeouts_fail_and_image_healthchecks_can_be_disabled() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox_as(
        &daemon,
        "e2e/busybox:hc",
        &["HEALTHCHECK --interval=200ms --retries=1 CMD exit 1"],
    )?;
    // The check that outlives its timeout is a failure, and is killed.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--health-cmd",
        "sleep 10",
        "--health-timeout",
        "300ms",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "e2e/busybox:hc",
        "sleep",
        "300",
    ])?;
    let v = wait_for(&daemon, "slow", "unhealthy");
    let last = v["State"]["Health"]["Log"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["ExitCode"], -1, "{last:#}");
    assert!(
        last["Output"]
            .as_str()
            .unwrap()
            .contains("exceeded timeout"),
        "{last:#}"
    );
    let sleepers = daemon.berth_ok(&[
        "exec",
        "slow",
        "sh",
        "-c",
        "ps -o args | grep -c '^sleep 10' || true",
    ])?;
    assert!(
        sleepers.trim().parse::<u32>().unwrap() <= 1,
        "timed-out checks pile up: {sleepers}"
    );

    // The image's HEALTHCHECK applies by default...
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "img",
        "--network",
        "none",
        "e2e/busybox:hc",
        "sleep",
        "300",
    ])?;
    wait_for(&daemon, "img", "unhealthy");
    // ...and --no-healthcheck turns it off.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "off",
        "--network",
        "none",
        "--no-healthcheck",
        "e2e/busybox:hc",
        "sleep",
        "300",
    ])?;
    std::thread::sleep(Duration::from_millis(800));
    let v = inspect(&daemon, "off");
    assert!(v["healthcheck"].is_null(), "{v:#}");
    assert!(v["State"]["Health"].is_null(), "{v:#}");
    let line = ps_line(&daemon, "off");
    assert!(line.contains("Up ") && !line.contains('('), "{line}");

    // Bad flags are refused with a clear error.
    let out = daemon.berth(&[
        "run",
        "-d",
        "--health-interval",
        "soon",
        "--health-cmd",
        "true",
        BUSYBOX_HC,
        "true",
    ])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--health-interval"),
        "{out:?}"
    );
    let out = daemon.berth(&[
        "run",
        "-d",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        BUSYBOX_HC,
        "true",
    ])?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("conflicts"),
        "{out:?}"
    );
    daemon.berth_ok(&["rm", "-f", "slow", "img", "off"])?;
    Ok(())
}

const BUSYBOX_HC: &str = "e2e/busybox:hc";
