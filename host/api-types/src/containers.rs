//! `/v1/containers`: run, list, inspect, the lifecycle verbs, exec,
//! update, stats, top, logs, attach and archives.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `POST /v1/containers`: the `docker run` options. Every field may be
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RunRequest {
    pub image: String,
    pub name: Option<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub detach: bool,
    pub auto_remove: bool,
    pub network: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub no_new_privileges: bool,
    pub seccomp_unconfined: bool,
    /// `-v /host:/ctr[:ro]` or `-v NAME:/ctr[:ro]`.
    pub volumes: Vec<String>,
    /// `--mount type=…,source=…,target=…`.
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    /// `-p [ip:]host:container[/udp]`.
    pub publish: Vec<String>,
    /// The lines of `--env-file` files (read by the CLI).
    pub env_file_lines: Vec<String>,
    /// `--ulimit name=soft[:hard]`.
    pub ulimits: Vec<String>,
    /// `--add-host name:ip`.
    pub add_hosts: Vec<String>,
    /// `--dns IP`.
    pub dns: Vec<String>,
    /// `--label KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// `--restart no|on-failure[:N]|always|unless-stopped`.
    pub restart: Option<String>,
    /// `--log-opt max-size=10m`, `--log-opt max-file=3`.
    pub log_opts: Vec<String>,
    /// `berth create`: prepare everything, start nothing.
    pub no_start: bool,
    /// `--health-*` and `--no-healthcheck`.
    pub health: HealthFlags,
    /// `-t` (Docker's `Tty`): the init gets a pseudo-terminal.
    pub tty: bool,
    /// `-i` (Docker's `OpenStdin`): stdin stays open for attached clients.
    pub open_stdin: bool,
    /// Docker's `StdinOnce`: the first attached client's stdin ending
    /// closes the container's (`run -i` sets it).
    pub stdin_once: bool,
    /// Docker's `ConsoleSize`: the terminal's first [rows, columns].
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<u16>>, min_items = 2, max_items = 2))]
    pub console_size: Option<(u16, u16)>,
}

/// The `run` flags that shape a health check; durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub start_period: Option<i64>,
    pub retries: Option<i64>,
    pub disable: bool,
}

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ContainerStatus {
    Created,
    Running {
        pid: i32,
    },
    /// Waiting out the back-off before its restart policy starts it again.
    Restarting {
        /// The exit code of the run that ended.
        code: i32,
    },
    Exited {
        code: i32,
        oom_killed: bool,
        error: Option<String>,
    },
}

/// `POST /v1/containers`: the container made; for a run that is neither
/// detached nor `no_start`, also how it ended and its output.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunResponse {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ContainerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// A container: one row of `GET /v1/containers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerSummary {
    /// Unix seconds its process was created, if it ever ran.
    pub started: Option<u64>,
    /// `starting`, `healthy` or `unhealthy`, for a container with a check.
    pub health: Option<String>,
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub created: u64,
    pub network: String,
    pub labels: BTreeMap<String, String>,
    pub status: ContainerStatus,
    pub restart_count: u32,
}

/// `GET /v1/containers/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerInspect {
    #[serde(flatten)]
    pub summary: ContainerSummary,
    /// The container's directory on the host.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dir: PathBuf,
    pub auto_remove: bool,
    pub restart_policy: String,
    pub healthcheck: Option<HealthCheck>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// Docker's `State.Health`, for a container with a check.
    #[serde(rename = "State", default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InspectState>,
    /// The OCI runtime spec it runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub spec: Option<serde_json::Value>,
    /// The monitor's settings: limits, restart policy, log rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub resources: Option<serde_json::Value>,
}

/// Docker's `State` in an inspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectState {
    #[serde(rename = "Health")]
    pub health: Option<HealthState>,
}

/// A container's resolved health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthCheck {
    /// `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: DurationParts,
    pub timeout: DurationParts,
    pub start_period: DurationParts,
    pub retries: u32,
}

/// A duration as serde writes a `std::time::Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DurationParts {
    pub secs: u64,
    pub nanos: u32,
}

impl From<std::time::Duration> for DurationParts {
    fn from(d: std::time::Duration) -> Self {
        DurationParts {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }
}

/// One run of the check (Docker's `State.Health.Log[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            status: "starting".into(),
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

/// The answer of `wait`, `stop`, `start` and `restart`: the container's
/// status once the verb is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusResponse {
    pub id: String,
    pub status: ContainerStatus,
}

/// `DELETE /v1/containers/{id}`: what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemovedContainer {
    pub id: String,
    pub name: String,
}

/// `POST /v1/containers/{id}/exec`: the first line of the request body
/// (JSON, then `\n`); with `stdin`, the rest of the body is the command's
/// stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `-d`: start it and answer at once.
    pub detach: bool,
    /// `-i`: the rest of the body is the command's stdin.
    pub stdin: bool,
    /// `-t`: a pseudo-terminal; its output comes as stdout frames.
    pub tty: bool,
    /// The terminal's (rows, columns); 24×80 if absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<u16>>, min_items = 2, max_items = 2))]
    pub tty_size: Option<(u16, u16)>,
}

/// The answer to a detached exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecDetached {
    /// The container's id.
    pub id: String,
}

/// `POST /v1/containers/{id}/update`: the settings `docker update`
/// changes; absent ones stay as they are. Sizes in bytes, Docker's
/// conventions (-1 unlimited). Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct UpdateRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
}

/// The answer to an update: the monitor's settings now in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateResponse {
    pub id: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub resources: serde_json::Value,
}

/// `GET /v1/containers/{id}/stats`: the container's cgroup counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    pub id: String,
    pub name: String,
    pub cpu_usage_ns: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: Option<u64>,
    pub oom_kills: u64,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    pub blkio_read_bytes: u64,
    pub blkio_write_bytes: u64,
}

/// `GET /v1/containers/{id}/top`: Docker's shape, one row per process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Top {
    #[serde(rename = "Titles")]
    pub titles: Vec<String>,
    #[serde(rename = "Processes")]
    pub processes: Vec<Vec<String>>,
}

/// `GET /v1/containers/{id}/archive?stat=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PathStat {
    pub exists: bool,
    pub dir: bool,
}

/// `PUT /v1/containers/{id}/archive`: what was extracted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArchiveExtracted {
    pub id: String,
    pub entries: u64,
    pub bytes: u64,
}

/// `GET /v1/containers?all=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct ListQuery {
    /// Also the containers that are not running.
    pub all: bool,
}

/// `POST /v1/containers/{id}/kill?signal=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct KillQuery {
    /// A name (`SIGTERM`, `TERM`) or number; SIGKILL if absent.
    pub signal: Option<String>,
}

/// `POST /v1/containers/{id}/stop?t=` and `.../restart?t=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct StopQuery {
    /// Seconds to wait before SIGKILL (Docker's default 10).
    pub t: Option<u64>,
}

/// `DELETE /v1/containers/{id}?force=&volumes=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct RemoveQuery {
    /// Kill a running container first.
    pub force: bool,
    /// `rm -v`: also remove the container's anonymous volumes.
    pub volumes: bool,
}

/// `GET /v1/containers/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct LogsQuery {
    pub follow: bool,
    /// A number of entries from the end, or `all`.
    pub tail: Option<String>,
    /// Unix seconds (fractions allowed).
    pub since: Option<f64>,
    pub until: Option<f64>,
}

/// `POST /v1/containers/{id}/attach`: Docker's query: `stdin=1`;
/// `stream`, `stdout`, `stderr` and `logs` are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct AttachQuery {
    /// `1` or `true`: the request body is the container's stdin.
    pub stdin: Option<String>,
}

/// `POST /v1/containers/{id}/resize?h=&w=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct ResizeQuery {
    /// Rows, 0 to 65535.
    pub h: Option<String>,
    /// Columns, 0 to 65535.
    pub w: Option<String>,
}

/// `GET` and `PUT /v1/containers/{id}/archive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(default)]
pub struct ArchiveQuery {
    /// The path inside the container.
    pub path: String,
    /// Answer `{"exists", "dir"}` instead of the tar.
    pub stat: bool,
}
