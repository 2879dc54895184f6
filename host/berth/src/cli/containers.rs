//! Container verbs: `run`, `create`, `start`, `restart`, `ps`, `logs`,
//! `wait`, `stop`, `kill`, `rm`, `inspect`. Exit codes follow Docker: the container's own, 125 when
//! berth failed, 126/127 when the command could not run. `run -i`/`-t`
//! and `start -a` attach before they start (see `attach.rs`).

use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;
use http::Method;

use berth_api_types::{
    ContainerInspect, ContainerStatus, ContainerSummary, ErrorBody, HealthFlags, RunRequest,
    RunResponse, StatusResponse, Top, UpdateRequest,
};

use super::http::Daemon;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open (and with run, attach ours to it).
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a pseudo-terminal (ours goes raw meanwhile with -i).
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// `none`, `host`, `bridge` (default) or a network's name.
    #[arg(long)]
    pub network: Option<String>,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// `no-new-privileges` or `seccomp=unconfined`.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// `/host:/container[:ro]`.
    #[arg(short, long = "volume")]
    pub volumes: Vec<String>,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// `type=bind|volume|tmpfs,source=…,target=…[,readonly]`; repeatable.
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// e.g. `64m`, `1g`.
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// `[ip:]host:container[/udp]`; repeatable.
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// A file of `KEY=VALUE` lines; repeatable.
    #[arg(long = "env-file")]
    pub env_files: Vec<std::path::PathBuf>,
    /// `name=soft[:hard]`, e.g. `nofile=1024:2048`; repeatable.
    #[arg(long = "ulimit")]
    pub ulimits: Vec<String>,
    /// `name:ip` for /etc/hosts; repeatable.
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// DNS server for /etc/resolv.conf; repeatable.
    #[arg(long)]
    pub dns: Vec<String>,
    /// `KEY=VALUE` metadata; repeatable.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// `no`, `on-failure[:max-retries]`, `always` or `unless-stopped`.
    #[arg(long)]
    pub restart: Option<String>,
    /// `max-size=10m`, `max-file=3` (json-file rotation); repeatable.
    #[arg(long = "log-opt")]
    pub log_opts: Vec<String>,
    /// Command (run by `/bin/sh -c`) that checks the container's health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between checks, e.g. `30s`, `1m30s` (default 30s).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Longest a check may take (default 30s).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy (default 3).
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Time after start when failures do not count (default 0s).
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any health check, the image's included.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `64m`, `1g`, `512k`, `1024` (bytes), `-1` (unlimited).
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a size such as 64m or 1g"))?;
    Ok((n * mult as f64) as i64)
}

/// A Go-style duration (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn nanos(flag: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            let d = berth_image::parse_duration(s).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
            i64::try_from(d.as_nanos()).with_context(|| format!("{flag} {s:?} is too long"))
        })
        .transpose()
}

/// Docker's `Up 5 seconds`: the largest unit, roughly.
fn human_duration(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn exit_code_for(error_code: &str) -> i32 {
    match error_code {
        "command_not_executable" => 126,
        "command_not_found" => 127,
        _ => 125,
    }
}

/// `run`, or with `create` only prepare the container (`berth create`).
pub async fn run(daemon: &Daemon, a: RunArgs, create: bool) -> anyhow::Result<()> {
    let size = |v: &Option<String>| v.as_deref().map(parse_bytes).transpose();
    let mut env_file_lines = Vec::new();
    for f in &a.env_files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading --env-file {}", f.display()))?;
        env_file_lines.extend(text.lines().map(str::to_string));
    }
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let health = HealthFlags {
        cmd: a.health_cmd.clone(),
        interval: nanos("--health-interval", &a.health_interval)?,
        timeout: nanos("--health-timeout", &a.health_timeout)?,
        start_period: nanos("--health-start-period", &a.health_start_period)?,
        retries: a.health_retries,
        disable: a.no_healthcheck,
    };
    // Attached: created here, attached, then started (nothing is missed).
    let attach = (a.interactive || a.tty) && !a.detach && !create;
    let request = RunRequest {
        tty: a.tty,
        open_stdin: a.interactive,
        // As docker run -i: our stdin ending closes the container's.
        stdin_once: a.interactive && attach,
        console_size: if a.tty { super::terminal::size() } else { None },
        image: a.image.clone(),
        name: a.name.clone(),
        cmd: if a.command.is_empty() {
            None
        } else {
            Some(a.command.clone())
        },
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            }
        }),
        env: a.env.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        detach: a.detach,
        auto_remove: a.rm,
        network: a.network.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        read_only: a.read_only,
        no_new_privileges: a
            .security_opt
            .iter()
            .any(|o| o == "no-new-privileges" || o == "no-new-privileges:true"),
        seccomp_unconfined: a
            .security_opt
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined"),
        volumes: a.volumes.clone(),
        tmpfs: a.tmpfs.clone(),
        mounts: a.mounts.clone(),
        memory: size(&a.memory)?,
        memory_swap: size(&a.memory_swap)?,
        memory_reservation: size(&a.memory_reservation)?,
        pids_limit: a.pids_limit,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        publish: a.publish.clone(),
        env_file_lines,
        ulimits: a.ulimits.clone(),
        add_hosts: a.add_hosts.clone(),
        dns: a.dns.clone(),
        labels,
        restart: a.restart.clone(),
        log_opts: a.log_opts.clone(),
        no_start: create || attach,
        health,
    };
    let body = super::http::body(&request)?;
    let (status, resp) = daemon.send(Method::POST, "/v1/containers", body).await?;
    let bytes = http_body_util::BodyExt::collect(resp).await?.to_bytes();
    if !status.is_success() {
        let e: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
            code: String::new(),
            message: "the daemon refused to run the container".into(),
        });
        eprintln!("berth: {}", e.message);
        std::process::exit(exit_code_for(&e.code));
    }
    let v: RunResponse = serde_json::from_slice(&bytes)
        .context("the daemon's answer to run is not what this berth reads")?;
    if attach {
        return run_attached(daemon, &v.id, &a).await;
    }
    if a.detach || create {
        println!("{}", v.id);
        return Ok(());
    }
    print!("{}", v.stdout.as_deref().unwrap_or(""));
    eprint!("{}", v.stderr.as_deref().unwrap_or(""));
    let _ = std::io::stdout().flush();
    let code = match &v.status {
        Some(ContainerStatus::Exited { code, .. } | ContainerStatus::Restarting { code }) => *code,
        _ => 125,
    };
    if let Some(ContainerStatus::Exited {
        error: Some(err), ..
    }) = &v.status
    {
        eprintln!("berth: {err}");
    }
    std::process::exit(code);
}

/// Start the created container `id` as `--rm` or not.
async fn start_or_exit(daemon: &Daemon, id: &str, rm: bool, raw: &super::terminal::RawMode) {
    let path = format!("/v1/containers/{}/start", super::encode(id));
    let failed = match daemon.send(Method::POST, &path, None).await {
        Ok((status, _)) if status.is_success() => return,
        Ok((status, resp)) => {
            let bytes = http_body_util::BodyExt::collect(resp)
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => (e.message, exit_code_for(&e.code)),
                Err(_) => (
                    format!("starting the container failed ({status})"),
                    exit_code_for(""),
                ),
            }
        }
        Err(e) => (format!("{e:#}"), 125),
    };
    raw.restore();
    if rm {
        let path = format!("/v1/containers/{}?force=true", super::encode(id));
        let _ = daemon.send(Method::DELETE, &path, None).await;
    }
    eprintln!("berth: {}", failed.0);
    std::process::exit(failed.1);
}

/// `run -i`/`-t` without `-d`: attach, start, relay, exit with its code.
async fn run_attached(daemon: &Daemon, id: &str, a: &RunArgs) -> anyhow::Result<()> {
    let attached = super::attach::open(daemon, id, a.interactive, a.tty).await?;
    let raw = if a.tty && a.interactive {
        super::terminal::RawMode::enter()
    } else {
        super::terminal::RawMode::none()
    };
    start_or_exit(daemon, id, a.rm, &raw).await;
    let outcome = super::attach::session(daemon, attached).await;
    if a.rm && matches!(outcome, Ok(super::attach::Outcome::Exited(_))) {
        wait_removed(daemon, id).await;
    }
    let shown = a
        .name
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    super::attach::finish(raw, outcome, &shown)
}

/// `--rm`: berthd removes the container once it exited; wait for that
/// (briefly), as `docker run --rm` does, so it is gone when we return.
async fn wait_removed(daemon: &Daemon, id: &str) {
    let path = format!("/v1/containers/{}", super::encode(id));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match daemon.send(Method::GET, &path, None).await {
            Ok((status, _)) if status == http::StatusCode::NOT_FOUND => return,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Err(_) => return,
        }
    }
}

/// `start -a [-i]`: attach to one container, start it, exit with its code.
pub async fn start_attached(
    daemon: &Daemon,
    containers: &[String],
    interactive: bool,
) -> anyhow::Result<()> {
    let [container] = containers else {
        bail!("start -a attaches to one container at a time: name only one");
    };
    let path = format!("/v1/containers/{}", super::encode(container));
    let info: ContainerInspect = daemon.call(Method::GET, &path, None).await?;
    let tty = info.tty;
    let stdin = interactive && info.open_stdin;
    let attached = super::attach::open(daemon, container, stdin, tty).await?;
    let raw = if tty && stdin {
        super::terminal::RawMode::enter()
    } else {
        super::terminal::RawMode::none()
    };
    start_or_exit(daemon, container, false, &raw).await;
    if tty {
        super::attach::resize(daemon, container).await;
    }
    let outcome = super::attach::session(daemon, attached).await;
    super::attach::finish(raw, outcome, container)
}

pub async fn ps(daemon: &Daemon, all: bool, quiet: bool) -> anyhow::Result<()> {
    let v: Vec<ContainerSummary> = daemon
        .call(Method::GET, &format!("/v1/containers?all={all}"), None)
        .await?;
    if !quiet {
        println!(
            "{:<14} {:<32} {:<22} {:<30} NAMES",
            "CONTAINER ID", "IMAGE", "COMMAND", "STATUS"
        );
    }
    for c in &v {
        let id: String = c.id.chars().take(12).collect();
        if quiet {
            println!("{id}");
            continue;
        }
        let status = match &c.status {
            ContainerStatus::Exited { code, .. } => format!("Exited ({code})"),
            ContainerStatus::Restarting { code } => format!("Restarting ({code})"),
            ContainerStatus::Running { .. } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let up = c
                    .started
                    .map(|s| format!("Up {}", human_duration(now.saturating_sub(s))))
                    .unwrap_or_else(|| "Up".into());
                match c.health.as_deref() {
                    Some("starting") => format!("{up} (health: starting)"),
                    Some(h) => format!("{up} ({h})"),
                    None => up,
                }
            }
            ContainerStatus::Created => "created".to_string(),
        };
        let cmd = c.command.join(" ");
        println!(
            "{:<14} {:<32} {:<22} {:<30} {}",
            id, c.image, cmd, status, c.name
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the output until the container is over.
    #[arg(short, long)]
    pub follow: bool,
    /// Lines from the end (a number or `all`).
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    /// Prefix each line with its RFC 3339 timestamp (nanoseconds).
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines since: RFC 3339, unix seconds, or relative (`10m`, `2h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines until (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// `--since`/`--until` as unix seconds.
fn parse_time(flag: &str, s: &str) -> anyhow::Result<f64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let unit = match s.chars().last() {
        Some('s') => Some(1.0),
        Some('m') => Some(60.0),
        Some('h') => Some(3600.0),
        _ => None,
    };
    if let Some(unit) = unit
        && let Ok(n) = s[..s.len() - 1].parse::<f64>()
    {
        return Ok(now - n * unit);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(secs);
    }
    if let Some(t) = berth_runtime::logfile::parse_timestamp(s) {
        return Ok(t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0));
    }
    bail!(
        "{flag} {s:?}: use an RFC 3339 time (2026-11-30T01:00:00Z), unix seconds, or a duration such as 10m"
    )
}

/// Print log entries from the daemon as they come: stdout to stdout,
/// stderr to stderr.
pub async fn logs(daemon: &Daemon, a: LogsArgs) -> anyhow::Result<()> {
    use berth_runtime::logfile::{Stream, parse_entry};
    use http_body_util::BodyExt;

    let mut q = format!("follow={}", a.follow);
    if let Some(t) = &a.tail {
        q.push_str(&format!("&tail={}", super::encode(t)));
    }
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", parse_time("--since", s)?));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", parse_time("--until", u)?));
    }
    let (status, mut body) = daemon
        .send(
            Method::GET,
            &format!("/v1/containers/{}/logs?{q}", super::encode(&a.container)),
            None,
        )
        .await?;
    if !status.is_success() {
        super::http::json_of(status, body).await?;
        bail!("the daemon answered {status}");
    }
    let mut pending: Vec<u8> = Vec::new();
    // Whether each stream is at the start of a line (where -t prints a time).
    let mut at_start = [true, true];
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the log from the daemon")?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + nl];
            start += nl + 1;
            let Some(e) = parse_entry(line) else {
                continue;
            };
            let (w, i): (&mut dyn Write, usize) = match e.stream {
                Stream::Stdout => (&mut out, 0),
                Stream::Stderr => (&mut err, 1),
            };
            if a.timestamps && at_start[i] {
                write!(w, "{} ", e.timestamp)?;
            }
            w.write_all(e.content)?;
            if !e.partial {
                w.write_all(b"\n")?;
            }
            at_start[i] = !e.partial;
        }
        pending.drain(..start);
        out.flush()?;
        err.flush()?;
    }
    Ok(())
}

/// `start`: start created or stopped containers.
pub async fn start(daemon: &Daemon, containers: &[String]) -> anyhow::Result<()> {
    for c in containers {
        daemon
            .json(
                Method::POST,
                &format!("/v1/containers/{}/start", super::encode(c)),
                None,
            )
            .await?;
        println!("{c}");
    }
    Ok(())
}

/// `restart [-t N]`: stop (without firing the restart policy), then start.
pub async fn restart(daemon: &Daemon, containers: &[String], t: Option<u64>) -> anyhow::Result<()> {
    let q = t.map(|t| format!("?t={t}")).unwrap_or_default();
    for c in containers {
        daemon
            .json(
                Method::POST,
                &format!("/v1/containers/{}/restart{q}", super::encode(c)),
                None,
            )
            .await?;
        println!("{c}");
    }
    Ok(())
}

pub async fn wait(daemon: &Daemon, container: &str) -> anyhow::Result<()> {
    let v: StatusResponse = daemon
        .call(
            Method::POST,
            &format!("/v1/containers/{}/wait", super::encode(container)),
            None,
        )
        .await?;
    match v.status {
        ContainerStatus::Exited { code, .. } | ContainerStatus::Restarting { code } => {
            println!("{code}")
        }
        _ => println!("null"),
    }
    Ok(())
}

pub async fn stop(daemon: &Daemon, container: &str, t: Option<u64>) -> anyhow::Result<()> {
    let q = t.map(|t| format!("?t={t}")).unwrap_or_default();
    daemon
        .json(
            Method::POST,
            &format!("/v1/containers/{}/stop{q}", super::encode(container)),
            None,
        )
        .await?;
    println!("{container}");
    Ok(())
}

pub async fn kill(daemon: &Daemon, container: &str, signal: Option<String>) -> anyhow::Result<()> {
    let q = signal
        .map(|s| format!("?signal={}", super::encode(&s)))
        .unwrap_or_default();
    daemon
        .json(
            Method::POST,
            &format!("/v1/containers/{}/kill{q}", super::encode(container)),
            None,
        )
        .await?;
    println!("{container}");
    Ok(())
}

pub async fn rm(
    daemon: &Daemon,
    containers: &[String],
    force: bool,
    volumes: bool,
) -> anyhow::Result<()> {
    for_each(containers, "removed", |c| {
        let path = format!(
            "/v1/containers/{}?force={force}&volumes={volumes}",
            super::encode(c)
        );
        async move { daemon.json(Method::DELETE, &path, None).await }
    })
    .await
}

/// Docker's habit for verbs on several containers: each one's name on
/// success, each failure on stderr, and an error at the end if any failed.
async fn for_each<F, Fut>(containers: &[String], done: &str, mut call: F) -> anyhow::Result<()>
where
    F: FnMut(&str) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<serde_json::Value>>,
{
    let mut failed = 0;
    for c in containers {
        match call(c).await {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} container(s) could not be {done}");
    }
    Ok(())
}

pub async fn inspect(daemon: &Daemon, container: &str) -> anyhow::Result<()> {
    let v = daemon
        .json(
            Method::GET,
            &format!("/v1/containers/{}", super::encode(container)),
            None,
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// e.g. `64m`, `1g`; `-1` lifts the limit.
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap; `-1` for unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// CPUs worth of time, e.g. `0.5`; `0` lifts the quota.
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// `-1` or `0` lifts the limit.
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn update(daemon: &Daemon, a: UpdateArgs) -> anyhow::Result<()> {
    let size = |v: &Option<String>| v.as_deref().map(parse_bytes).transpose();
    let body = super::http::body(&UpdateRequest {
        memory: size(&a.memory)?,
        memory_swap: size(&a.memory_swap)?,
        memory_reservation: size(&a.memory_reservation)?,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
    })?;
    for_each(&a.containers, "updated", |c| {
        let path = format!("/v1/containers/{}/update", super::encode(c));
        let body = body.clone();
        async move { daemon.json(Method::POST, &path, body).await }
    })
    .await
}

/// `docker top`'s table: columns as wide as their widest cell.
pub async fn top(daemon: &Daemon, container: &str) -> anyhow::Result<()> {
    let v: Top = daemon
        .call(
            Method::GET,
            &format!("/v1/containers/{}/top", super::encode(container)),
            None,
        )
        .await?;
    let mut rows = vec![v.titles];
    rows.extend(v.processes);
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{line}");
    }
    Ok(())
}
