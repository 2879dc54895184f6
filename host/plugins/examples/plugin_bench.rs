//! Plugin call latency on warm instances, against the targets (median
//! ≤ 10 µs, p99 ≤ 50 µs), plus compile vs compile-cache-hit load time.
//! Run in release: `bench/plugins.sh` (or `cargo run --release -p
//! berth-plugins --example plugin_bench -- [CALLS]`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth_auth::{Action, Credentials};
use berth_plugin_artifacts as artifacts;
use berth_plugins::{
    Access, AuthnAnswer, CacheOutcome, DirGrant, Kind, ManagerOptions, PluginManager, PluginSpec,
};
use berth_policy::{ContainerSpec, Event, Verdict};

const MEDIAN_TARGET: Duration = Duration::from_micros(10);
const P99_TARGET: Duration = Duration::from_micros(50);

fn main() -> Result<()> {
    let calls: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("the argument is the number of calls")?,
        None => 100_000,
    };
    let cache = tempfile::tempdir()?;
    let bytes = std::fs::read(artifacts::DENY_ROOT)?;

    println!("== load deny-root ({} KiB)", bytes.len() / 1024);
    let m = PluginManager::new(ManagerOptions::new(cache.path()));
    let start = Instant::now();
    let info = m.load(
        PluginSpec::new("deny-root", Kind::LifecycleHook, "bench"),
        &bytes,
    )?;
    let compiled = start.elapsed();
    if info.cache != CacheOutcome::Compiled {
        bail!("expected a compile on an empty cache");
    }
    let fresh = PluginManager::new(ManagerOptions::new(cache.path()));
    let start = Instant::now();
    let info = fresh.load(
        PluginSpec::new("deny-root", Kind::LifecycleHook, "bench"),
        &bytes,
    )?;
    let hit = start.elapsed();
    if info.cache != CacheOutcome::Hit {
        bail!("expected a cache hit");
    }
    println!("load with compile      {:>10.2?}", compiled);
    println!(
        "load from cache (hit)  {:>10.2?}  ({:.0}x faster)",
        hit,
        compiled.as_secs_f64() / hit.as_secs_f64()
    );

    let event = Event::PreCreate(ContainerSpec {
        name: "web".into(),
        image: "docker.io/library/busybox:latest".into(),
        uid: 0,
        ..ContainerSpec::default()
    });
    let hook = m.hook("deny-root")?;
    if !matches!(hook.judge(&event)?, Verdict::Deny(_)) {
        bail!("deny-root did not deny uid 0");
    }
    let mut ok = true;
    println!("\n== {calls} calls each, one thread, warm instances");
    ok &= report(
        "hook: deny-root pre-create (direct)",
        measure(calls, || hook.judge(&event).map(|_| ()))?,
    );
    ok &= report(
        "hook: deny-root pre-create (chain)",
        measure(calls, || {
            let outcome = m.run_hooks(&event);
            if outcome.allowed {
                bail!("chain allowed uid 0")
            } else {
                Ok(())
            }
        })?,
    );

    let dir = tempfile::tempdir()?;
    let bob = bcrypt::hash("bob-pw", 4)?;
    std::fs::write(dir.path().join("htpasswd"), format!("bob:{bob}\n"))?;
    let mut spec = PluginSpec::new("htpasswd", Kind::AuthProvider, "bench");
    spec.config = serde_json::json!({
        "htpasswd": "/auth/htpasswd",
        "groups": { "team": ["bob"] },
        "rules": [{ "groups": ["team"], "repositories": "team/*", "actions": ["pull", "push"] }],
        "anonymous": [{ "repositories": "public/*", "actions": ["pull"] }]
    });
    spec.grants.dirs.push(DirGrant {
        host: dir.path().to_path_buf(),
        guest: "/auth".into(),
        access: Access::Ro,
    });
    m.load(spec, &std::fs::read(artifacts::HTPASSWD_RBAC)?)?;
    let auth = m.auth_provider("htpasswd")?;
    let groups = match auth.authenticate(&Credentials::Basic {
        user: "bob".into(),
        password: "bob-pw".into(),
    })? {
        AuthnAnswer::Authenticated { groups, .. } => groups,
        other => bail!("bob was not authenticated: {other:?}"),
    };
    ok &= report(
        "auth: htpasswd-rbac authorize",
        measure(calls, || {
            auth.authorize(Some("bob"), &groups, Action::Push, "repository", "team/app")
                .map(|_| ())
        })?,
    );
    // No target: the plugin stats its htpasswd file through WASI on every
    // call (to reload it when it changes); shown for the record.
    report_only(
        "auth: htpasswd-rbac authenticate (cached)",
        measure(calls / 10, || {
            auth.authenticate(&Credentials::Basic {
                user: "bob".into(),
                password: "bob-pw".into(),
            })
            .map(|_| ())
        })?,
    );

    let info = m.inspect("deny-root")?;
    println!(
        "\nmetrics histogram for deny-root: p50 ≤ {:?} µs, p99 ≤ {:?} µs over {} calls",
        info.metrics.p50_us, info.metrics.p99_us, info.metrics.calls
    );
    println!(
        "\n{}",
        if ok {
            "all targets met"
        } else {
            "SOME TARGETS MISSED"
        }
    );
    Ok(())
}

fn measure<E: std::fmt::Display>(
    calls: usize,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Vec<Duration>> {
    for _ in 0..calls.min(1000) {
        f().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        f().map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times)
}

fn report_only(name: &str, times: Vec<Duration>) {
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<44} median {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}  (no target)",
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

fn report(name: &str, times: Vec<Duration>) -> bool {
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let (p50, p99, max) = (at(0.50), at(0.99), at(1.0));
    let ok = p50 <= MEDIAN_TARGET && p99 <= P99_TARGET;
    println!(
        "{name:<44} median {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}  [{}] (target median ≤ {MEDIAN_TARGET:?}, p99 ≤ {P99_TARGET:?})",
        p50,
        p99,
        max,
        if ok { "ok" } else { "MISSED" }
    );
    ok
}
