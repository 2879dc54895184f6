//! `berth plugin …` and `berth scan`: Wasm plugins in a running daemon, and
//! `berth plugin test`, which runs one offline on a recorded event.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use http::Method;

use super::http::{Daemon, json_of};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List loaded plugins.
    Ls,
    /// Show one plugin: spec, digest, state, metrics.
    Inspect { name: String },
    /// Load a plugin into the running daemon and keep it across restarts.
    Install(Box<InstallArgs>),
    /// Call a disabled plugin again.
    Enable { name: String },
    /// Stop calling a plugin (it stays installed).
    Disable { name: String },
    /// Remove a plugin.
    Rm { name: String },
    /// Fetch the plugin's source again and swap it in without dropping calls.
    Reload { name: String },
    /// Push a component to a registry as an OCI artifact.
    Push {
        /// The `.wasm` component.
        wasm: PathBuf,
        /// Where to, e.g. `localhost:5000/plugins/deny-root:1`.
        reference: String,
    },
    /// Run a plugin offline on a recorded event and print its verdict.
    Test {
        /// The `.wasm` component.
        wasm: PathBuf,
        /// The event (hooks), credentials and request (auth) or image (scanners), as JSON.
        #[arg(long)]
        event: PathBuf,
        /// lifecycle-hook, auth-provider or scanner.
        #[arg(long, default_value = "lifecycle-hook")]
        kind: String,
        /// The plugin's configuration as JSON.
        #[arg(long)]
        config: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// A `.wasm` path, or an OCI reference pinned by digest (`host/repo@sha256:…`).
    pub source: String,
    /// The plugin's name (default: from the source).
    #[arg(long)]
    pub name: Option<String>,
    /// lifecycle-hook, auth-provider, scanner or storage-backend.
    #[arg(long, default_value = "lifecycle-hook")]
    pub kind: String,
    /// The plugin's configuration as JSON.
    #[arg(long)]
    pub config: Option<String>,
    /// A directory the plugin may use: `HOST:GUEST[:ro|rw]`; repeatable.
    #[arg(long = "grant-dir")]
    pub grant_dirs: Vec<String>,
    /// An environment variable passed through; repeatable.
    #[arg(long = "grant-env")]
    pub grant_env: Vec<String>,
    /// An `IP:PORT` the plugin may connect to; repeatable.
    #[arg(long = "grant-net")]
    pub grant_net: Vec<String>,
    /// enforce, or audit (verdicts logged and counted, not enforced).
    #[arg(long, default_value = "enforce")]
    pub mode: String,
    /// open or closed: what a failing call means (default: closed for auth and hooks).
    #[arg(long)]
    pub on_failure: Option<String>,
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// Position among plugins of its kind (lower first).
    #[arg(long, default_value_t = 0)]
    pub order: i64,
}

fn default_name(source: &str) -> String {
    let base = source
        .rsplit('/')
        .next()
        .unwrap_or(source)
        .split(['@', ':'])
        .next()
        .unwrap_or(source);
    base.trim_end_matches(".wasm").replace('_', "-")
}

fn spec_of(a: &InstallArgs) -> anyhow::Result<serde_json::Value> {
    // A file that exists here is sent by absolute path; anything else is an
    // OCI reference for the daemon to fetch.
    let source = if !std::path::Path::new(&a.source).exists() {
        a.source.clone()
    } else {
        std::path::absolute(&a.source)
            .with_context(|| format!("resolving {}", a.source))?
            .display()
            .to_string()
    };
    let config: serde_json::Value = match &a.config {
        Some(c) => serde_json::from_str(c).context("--config is not valid JSON")?,
        None => serde_json::json!({}),
    };
    let mut dirs = Vec::new();
    for g in &a.grant_dirs {
        let parts: Vec<&str> = g.split(':').collect();
        let (host, guest, access) = match parts.as_slice() {
            [h, gu] => (*h, *gu, "ro"),
            [h, gu, acc @ ("ro" | "rw")] => (*h, *gu, *acc),
            _ => anyhow::bail!("--grant-dir {g:?}: use HOST:GUEST[:ro|rw]"),
        };
        dirs.push(serde_json::json!({ "host": host, "guest": guest, "access": access }));
    }
    let mut spec = serde_json::json!({
        "name": a.name.clone().unwrap_or_else(|| default_name(&a.source)),
        "kind": a.kind,
        "source": source,
        "order": a.order,
        "mode": a.mode,
        "config": config,
        "grants": { "dirs": dirs, "env": a.grant_env, "net": a.grant_net },
    });
    for (key, value) in [
        (
            "on_failure",
            a.on_failure.clone().map(serde_json::Value::from),
        ),
        ("timeout_ms", a.timeout_ms.map(serde_json::Value::from)),
        ("memory_mib", a.memory_mib.map(serde_json::Value::from)),
    ] {
        if let Some(v) = value {
            spec[key] = v;
        }
    }
    Ok(spec)
}

fn print_row(p: &serde_json::Value) {
    let state = match &p["state"] {
        serde_json::Value::String(s) => s.clone(),
        other => other
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_else(|| other.to_string()),
    };
    println!(
        "{:<22} {:<16} {:<10} {:<9} {:>8} {:>7} {}",
        p["name"].as_str().unwrap_or(""),
        p["kind"].as_str().unwrap_or(""),
        state,
        p["spec"]["mode"].as_str().unwrap_or(""),
        p["metrics"]["calls"].as_u64().unwrap_or(0),
        p["metrics"]["errors"].as_u64().unwrap_or(0),
        p["digest"]
            .as_str()
            .map(|d| &d[..d.len().min(19)])
            .unwrap_or("")
    );
}

pub async fn plugin(daemon: &Daemon, command: PluginCommand) -> anyhow::Result<()> {
    let path = |name: &str, action: &str| format!("/v1/plugins/{}{action}", super::encode(name));
    match command {
        PluginCommand::Ls => {
            let v = daemon.json(Method::GET, "/v1/plugins", None).await?;
            println!(
                "{:<22} {:<16} {:<10} {:<9} {:>8} {:>7} DIGEST",
                "NAME", "KIND", "STATE", "MODE", "CALLS", "ERRORS"
            );
            for p in v.as_array().into_iter().flatten() {
                print_row(p);
            }
        }
        PluginCommand::Inspect { name } => {
            let v = daemon.json(Method::GET, &path(&name, ""), None).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        PluginCommand::Install(a) => {
            let spec = spec_of(&a)?;
            let v = daemon.json(Method::POST, "/v1/plugins", Some(spec)).await?;
            println!(
                "installed {} ({}, {})",
                v["name"].as_str().unwrap_or(""),
                v["kind"].as_str().unwrap_or(""),
                v["digest"].as_str().unwrap_or("")
            );
        }
        PluginCommand::Enable { name } => {
            daemon
                .json(Method::POST, &path(&name, "/enable"), None)
                .await?;
            println!("{name}");
        }
        PluginCommand::Disable { name } => {
            daemon
                .json(Method::POST, &path(&name, "/disable"), None)
                .await?;
            println!("{name}");
        }
        PluginCommand::Rm { name } => {
            daemon.json(Method::DELETE, &path(&name, ""), None).await?;
            println!("{name}");
        }
        PluginCommand::Reload { name } => {
            let v = daemon
                .json(Method::POST, &path(&name, "/reload"), None)
                .await?;
            println!("reloaded {name} ({})", v["digest"].as_str().unwrap_or(""));
        }
        PluginCommand::Push { wasm, reference } => {
            let file = tokio::fs::File::open(&wasm)
                .await
                .with_context(|| format!("opening {}", wasm.display()))?;
            let (status, body) = daemon
                .send_stream(
                    Method::POST,
                    &format!("/v1/plugins/push?reference={}", super::encode(&reference)),
                    file,
                )
                .await?;
            let v = json_of(status, body).await?;
            println!("{}", v["pinned"].as_str().unwrap_or(""));
        }
        PluginCommand::Test {
            wasm,
            event,
            kind,
            config,
        } => {
            let kind: berth_plugins::Kind =
                serde_json::from_value(serde_json::Value::from(kind))
                    .context("--kind: use lifecycle-hook, auth-provider or scanner")?;
            let input = std::fs::read_to_string(&event)
                .with_context(|| format!("reading {}", event.display()))?;
            let out = tokio::task::spawn_blocking(move || {
                berth_plugins::test_plugin(&wasm, kind, &input, config.as_deref())
            })
            .await??;
            println!("{out}");
        }
    }
    Ok(())
}

/// `berth scan IMAGE`: what the scanner plugins find. `berth scan DIGEST`
/// shows the scan-on-push report of a manifest pushed to the registry.
pub async fn scan(daemon: &Daemon, image: &str, json: bool) -> anyhow::Result<()> {
    let v = if image.starts_with("sha256:") || image.starts_with("sha512:") {
        daemon
            .json(Method::GET, &format!("/v1/scans/{image}"), None)
            .await?
    } else {
        daemon
            .json(
                Method::POST,
                "/v1/images/scan",
                Some(serde_json::json!({ "reference": image })),
            )
            .await?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut failed = 0;
    for report in v["reports"].as_array().into_iter().flatten() {
        let scanner = report["scanner"].as_str().unwrap_or("");
        if let Some(e) = report["error"].as_str() {
            eprintln!("{scanner}: {e}");
            failed += 1;
            continue;
        }
        println!(
            "{:<14} {:<28} {:<24} {:<10} {:<9} PATH",
            "KIND", "PACKAGE", "VERSION", "ECOSYSTEM", "SEVERITY"
        );
        for f in report["findings"].as_array().into_iter().flatten() {
            println!(
                "{:<14} {:<28} {:<24} {:<10} {:<9} {}",
                f["kind"].as_str().unwrap_or(""),
                f["package"].as_str().unwrap_or(""),
                f["installed-version"].as_str().unwrap_or(""),
                f["ecosystem"].as_str().unwrap_or(""),
                f["severity"].as_str().unwrap_or(""),
                f["path"].as_str().unwrap_or("")
            );
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} scanner(s) failed");
    }
    Ok(())
}
