//! The control API fuzzed from its own OpenAPI document with schemathesis
//! against a live berthd: no 5xx, and every response conforms to the
//! document (status code, content type, body schema).
//!
//! schemathesis reads the document from `GET /v1/openapi.json` of the
//! daemon under test and sends its requests to the control socket through
//! a loopback port ([`UnixProxy`]). Not to the TCP control listener: every
//! request there needs a user's credentials, and the fuzzer, which learns
//! names from responses, removes that user through
//! `DELETE /v1/registry/users/{name}` and is locked out for the rest of the
//! run (it did). The daemon holds the busybox image and two containers, one
//! running and one exited, so listings and inspection return real records
//! and the fuzzer reuses their ids.
//!
//! Left out, because a request to them cannot end as plain
//! request/response, which is all schemathesis speaks:
//!
//! - `POST /v1/containers/{id}/attach` and `POST /v1/containers/{id}/exec`
//!   upgrade the connection to a stream of the container's input and output.
//!
//! Handled (`tests/schemathesis_hooks.py`), only for the running container:
//! `wait` is sent for the exited one instead, `logs` without `follow`
//! (both would last until the container ends), and `stop`/`restart` with a
//! grace of at most 2 s (a container fuzzed into pause ignores its stop
//! signal). Everything else is in, destructive or not.
//!
//! Pull, push and plugin push and install may answer 502: another registry
//! failed, not the daemon (`tests/schemathesis.toml`); none can be reached
//! here. Every other 5xx fails the test.

use std::process::Command;
use std::time::Instant;

use berth_e2e::containers::{BUSYBOX, import_busybox};
use berth_e2e::unix_proxy::UnixProxy;
use berth_e2e::{Berthd, schemathesis};

/// Operation ids schemathesis is told to skip (see the module documentation).
const EXCLUDED: &[&str] = &["containers_attach", "containers_exec"];

/// Test cases per operation and phase: about 60 operations, a couple of
/// minutes in all.
const MAX_EXAMPLES: &str = "30";

/// Fixed, so that a failure reproduces.
const SEED: &str = "20250612";

#[test]
fn control_api_conforms_to_its_openapi_document() -> anyhow::Result<()> {
    let st = schemathesis::st()?;
    // Its own bridge and subnets: created networks never meet another test's.
    let config = format!(
        "{}[network]\nbridge = \"bfz0\"\nsubnet = \"10.231.0.0/24\"\npool = \"10.232.0.0/16\"\n\
         bridge_prefix = \"fz-\"\nveth_prefix = \"vz-\"\n",
        Berthd::CONFIG_AUTH_NONE
    );
    // No registry beyond loopback is reached, whatever reference the fuzzer
    // pulls or pushes: berthd's client goes through a proxy that refuses
    // (port 9), so the run does not depend on the network, and fails fast.
    let dead_proxy = "http://127.0.0.1:9";
    let mut daemon = Berthd::start_with_env(
        &config,
        &[
            ("HTTPS_PROXY", dead_proxy),
            ("HTTP_PROXY", dead_proxy),
            ("NO_PROXY", "127.0.0.1,localhost,::1"),
        ],
    )?;
    import_busybox(&daemon)?;
    // Ends on SIGTERM (as PID 1 it would ignore it otherwise), so that a
    // fuzzed stop or restart takes no grace period.
    let running = daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "fuzz-running",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 1; done",
    ])?;
    daemon.berth_ok(&[
        "run",
        "--name",
        "fuzz-exited",
        "--network",
        "none",
        BUSYBOX,
        "true",
    ])?;
    let proxy = UnixProxy::start(&daemon.socket)?;
    let base = format!("http://{}", proxy.addr);

    let work = tempfile::tempdir()?;
    let here = berth_e2e::workspace_root().join("tests");
    let mut cmd = Command::new(&st);
    cmd.arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{base}/v1/openapi.json"))
        .args(["--url", &base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
        ])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .arg("--report-dir")
        .arg(work.path())
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", &here)
        .env(
            "BERTH_FUZZ_RUNNING",
            format!("{},fuzz-running", running.trim()),
        )
        .env("BERTH_FUZZ_EXITED", "fuzz-exited");
    for id in EXCLUDED {
        cmd.args(["--exclude-operation-id", id]);
    }
    let started = Instant::now();
    let out = cmd.current_dir(work.path()).output()?;
    println!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("schemathesis ran for {:.0?}", started.elapsed());
    daemon.check_alive()?;
    anyhow::ensure!(
        out.status.success(),
        "schemathesis found failures ({}); its report is above; berthd log tail:\n{}",
        out.status,
        berth_e2e::process::tail(&daemon.log(), 60)
    );
    // Still serving.
    daemon.berth_ok(&["ps", "-a"])?;
    daemon.berth_ok(&["images"])?;
    Ok(())
}
