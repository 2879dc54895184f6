//! `berth plugin …` and `berth scan`: Wasm plugins in a running daemon, and
//! `berth plugin test`, which runs one offline on a recorded event.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use http::Method;

use berth_api_types as api;

use super::http::{Daemon, body, decode, json_of};

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

/// A CLI word (`--kind lifecycle-hook`) as one of the API's enums, by the
/// same names the wire uses.
fn word<T: serde::de::DeserializeOwned>(
    flag: &str,
    value: &str,
    choices: &str,
) -> anyhow::Result<T> {
    use serde::de::IntoDeserializer;
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(value))
        .map_err(|_| anyhow::anyhow!("{flag} {value:?}: use {choices}"))
}

fn spec_of(a: &InstallArgs) -> anyhow::Result<api::PluginSpec> {
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
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let mut dirs = Vec::new();
    for g in &a.grant_dirs {
        let parts: Vec<&str> = g.split(':').collect();
        let (host, guest, access) = match parts.as_slice() {
            [h, gu] => (*h, *gu, api::DirAccess::Ro),
            [h, gu, "ro"] => (*h, *gu, api::DirAccess::Ro),
            [h, gu, "rw"] => (*h, *gu, api::DirAccess::Rw),
            _ => anyhow::bail!("--grant-dir {g:?}: use HOST:GUEST[:ro|rw]"),
        };
        dirs.push(api::DirGrant {
            host: host.to_string(),
            guest: guest.to_string(),
            access,
        });
    }
    Ok(api::PluginSpec {
        name: a.name.clone().unwrap_or_else(|| default_name(&a.source)),
        kind: word(
            "--kind",
            &a.kind,
            "lifecycle-hook, auth-provider, scanner or storage-backend",
        )?,
        source,
        enabled: true,
        order: a.order,
        mode: word("--mode", &a.mode, "enforce or audit")?,
        on_failure: a
            .on_failure
            .as_deref()
            .map(|f| word("--on-failure", f, "open or closed"))
            .transpose()?,
        timeout_ms: a.timeout_ms,
        memory_mib: a.memory_mib,
        config,
        grants: api::PluginGrants {
            dirs,
            env: a.grant_env.clone(),
            net: a.grant_net.clone(),
            dns: false,
        },
    })
}

fn kind_word(k: api::PluginKind) -> &'static str {
    match k {
        api::PluginKind::StorageBackend => "storage-backend",
        api::PluginKind::AuthProvider => "auth-provider",
        api::PluginKind::Scanner => "scanner",
        api::PluginKind::LifecycleHook => "lifecycle-hook",
    }
}

fn print_row(p: &api::PluginInfo) {
    let mode = match p.spec.mode {
        api::PluginMode::Enforce => "enforce",
        api::PluginMode::Audit => "audit",
    };
    println!(
        "{:<22} {:<16} {:<10} {:<9} {:>8} {:>7} {}",
        p.name,
        kind_word(p.kind),
        p.state.as_str(),
        mode,
        p.metrics.calls,
        p.metrics.errors,
        &p.digest[..p.digest.len().min(19)]
    );
}

pub async fn plugin(daemon: &Daemon, command: PluginCommand) -> anyhow::Result<()> {
    let path = |name: &str, action: &str| format!("/v1/plugins/{}{action}", super::encode(name));
    match command {
        PluginCommand::Ls => {
            let list: Vec<api::PluginInfo> = daemon.call(Method::GET, "/v1/plugins", None).await?;
            println!(
                "{:<22} {:<16} {:<10} {:<9} {:>8} {:>7} DIGEST",
                "NAME", "KIND", "STATE", "MODE", "CALLS", "ERRORS"
            );
            for p in &list {
                print_row(p);
            }
        }
        PluginCommand::Inspect { name } => {
            let v = daemon.json(Method::GET, &path(&name, ""), None).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        PluginCommand::Install(a) => {
            let spec = body(&spec_of(&a)?)?;
            let p: api::PluginInfo = daemon.call(Method::POST, "/v1/plugins", spec).await?;
            println!("installed {} ({}, {})", p.name, kind_word(p.kind), p.digest);
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
            let p: api::PluginInfo = daemon
                .call(Method::POST, &path(&name, "/reload"), None)
                .await?;
            println!("reloaded {name} ({})", p.digest);
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
            let pushed: api::PluginPushResponse =
                decode(json_of(status, body).await?, "plugin push")?;
            println!("{}", pushed.pinned);
        }
        PluginCommand::Test {
            wasm,
            event,
            kind,
            config,
        } => {
            let kind: berth_plugins::Kind = kind
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--kind: {e}"))?;
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
        let req = body(&api::ScanRequest {
            reference: image.to_string(),
        })?;
        daemon.json(Method::POST, "/v1/images/scan", req).await?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    // A scan-on-push that failed as a whole is kept as `{repository,
    // digest, error}`.
    if let Ok(failed) = serde_json::from_value::<ScanFailed>(v.clone()) {
        anyhow::bail!("scan of {}: {}", failed.digest, failed.error);
    }
    let scan: api::ScanResponse = decode(v, "scan")?;
    let mut failed = 0;
    for report in scan.reports {
        if let Some(e) = report.error {
            eprintln!("{}: {e}", report.scanner);
            failed += 1;
            continue;
        }
        println!(
            "{:<14} {:<28} {:<24} {:<10} {:<9} PATH",
            "KIND", "PACKAGE", "VERSION", "ECOSYSTEM", "SEVERITY"
        );
        for f in report.findings.unwrap_or_default() {
            println!(
                "{:<14} {:<28} {:<24} {:<10} {:<9} {}",
                f.kind, f.package, f.installed_version, f.ecosystem, f.severity, f.path
            );
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} scanner(s) failed");
    }
    Ok(())
}

/// A scan-on-push report of a scan that could not run at all.
#[derive(serde::Deserialize)]
struct ScanFailed {
    digest: String,
    error: String,
}
