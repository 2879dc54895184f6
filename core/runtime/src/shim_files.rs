//! The files a container's monitor (`berth-shim`) and the daemon share in
//! the container's directory; both sides use these types, so the protocol
//! lives in one place.
//!
//! - `config.json` — the OCI runtime spec, written by the daemon;
//! - `shim.json` — [`ShimConfig`], written by the daemon;
//! - `start` — a FIFO: the shim waits for one byte on it before starting
//!   the first run, so the daemon can set up networking first;
//! - `shim.pid` — the shim's own pid: while it lives, the container is not over;
//! - `pid` — the current run's host pid, rewritten on every restart (these
//!   two are written without fsync: a power cut ends the processes they
//!   name, and a missing or empty file reads as no process);
//! - `restart.json` — [`RestartState`]: restarts so far, and whether the
//!   shim is waiting out a back-off;
//! - `manual-stop` — written by the daemon before a user's stop, kill or
//!   rm: the shim must not restart what the user stopped;
//! - `exit.json` — [`ExitRecord`], written when the shim is done (or the
//!   container could not be created: code 125/126/127); fsynced unless
//!   the container is [`ShimConfig::auto_remove`];
//! - `container.log*` — the output, see [`crate::logfile`];
//! - `attach.sock` — with `-i` or `-t`: the socket the shim serves attach
//!   on (see [`crate::attach`]).
//!
//! The directory is the daemon's and the shim's alone: `config.json`
//! carries the container's environment (secrets), the log its output. Its
//! directories are made [`DIR_MODE`] and its files [`FILE_MODE`] whatever
//! the umask; only the `etc/` files bind-mounted into the container stay
//! readable by the container's users (see `crate::etc`).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The mode of the directories berth keeps for a container.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the files berth keeps for a container.
pub const FILE_MODE: u32 = 0o600;

/// The mode of the `etc/` files bind-mounted into a container, which its
/// users read: set explicitly, as berthd's umask (0077) would take it away.
pub const SHARED_FILE_MODE: u32 = 0o644;

/// Replace the contents of `path` in place (the file may be bind-mounted
/// into a container, which a rename would leave looking at the old inode)
/// and make it [`SHARED_FILE_MODE`] whatever the umask.
pub fn write_shared(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(SHARED_FILE_MODE))?;
    f.write_all(bytes)
}

/// Options that create a file as [`FILE_MODE`]; add the access wanted.
pub fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Create `dir` and its missing parents as [`DIR_MODE`].
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// The marker of a stop the user asked for.
pub const MANUAL_STOP: &str = "manual-stop";
/// The restart state file.
pub const RESTART_STATE: &str = "restart.json";

/// What the daemon tells a shim besides the runtime spec. Limits use
/// Docker's conventions (negative = unlimited).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// Parent cgroup path under each hierarchy (`berth`).
    pub cgroup_parent: String,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub blkio_weight: Option<u16>,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub log: LogOptions,
    /// `-t`: the container's init gets a terminal, whose master the shim holds.
    #[serde(default)]
    pub tty: bool,
    /// `-i`: the container's stdin stays open for attached clients (a
    /// pipe from the shim without `-t`).
    #[serde(default)]
    pub open_stdin: bool,
    /// Docker's `StdinOnce` (`run -i`): when the first attached client's
    /// stdin ends, the container's does (without `-t`).
    #[serde(default)]
    pub stdin_once: bool,
    /// The terminal's first (rows, columns), set before the init starts.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    /// `--rm`: the daemon removes the container when it exits, and at
    /// start-up when its shim is gone, so the shim's records of it need
    /// not survive a power cut (written without fsync).
    #[serde(default)]
    pub auto_remove: bool,
}

/// Docker's json-file rotation options, applied by the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Rotate when the current file would grow past this; `None`: never.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (Docker's `max-file`, ≥ 1).
    pub max_file: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_size: None,
            max_file: 1,
        }
    }
}

/// Docker's `--restart` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        max: u32,
    },
    Always,
    UnlessStopped,
}

/// A `--restart` value that is none of Docker's.
#[derive(Debug, thiserror::Error)]
#[error("invalid restart policy {0:?}: use no, on-failure[:max-retries], always or unless-stopped")]
pub struct BadRestartPolicy(pub String);

impl std::str::FromStr for RestartPolicy {
    type Err = BadRestartPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadRestartPolicy(s.to_string());
        let (name, max) = match s.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (s, None),
        };
        match (name, max) {
            ("no" | "", None) => Ok(RestartPolicy::No),
            ("always", None) => Ok(RestartPolicy::Always),
            ("unless-stopped", None) => Ok(RestartPolicy::UnlessStopped),
            ("on-failure", None) => Ok(RestartPolicy::OnFailure { max: 0 }),
            ("on-failure", Some(m)) => Ok(RestartPolicy::OnFailure {
                max: m.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { max: 0 } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max } => write!(f, "on-failure:{max}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl RestartPolicy {
    /// Whether a run that ended with `code`, after `restarts` restarts, is
    /// restarted. A stop by the user never is (Docker's rule).
    pub fn should_restart(self, code: i32, restarts: u32, manual_stop: bool) -> bool {
        if manual_stop {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }

    /// Whether the daemon brings a container that is not running back when
    /// it starts (e.g. after a reboot).
    pub fn revive_on_boot(self, manual_stop: bool) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !manual_stop,
            _ => false,
        }
    }
}

/// Docker's restart back-off: 100 ms, doubling, at most a minute; back to
/// 100 ms after a run that lasted 10 s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(60);
    const RESET_AFTER: Duration = Duration::from_secs(10);

    /// Continue from the last wait (kept in [`RestartState::backoff_ms`]).
    pub fn resume(last: Option<Duration>) -> Backoff {
        Backoff { delay: last }
    }

    /// The wait before the next start, given how long the last run lasted.
    pub fn next(&mut self, ran: Duration) -> Duration {
        let d = match self.delay {
            Some(d) if ran < Self::RESET_AFTER => (d * 2).min(Self::MAX),
            _ => Self::FIRST,
        };
        self.delay = Some(d);
        d
    }
}

/// The shim's restart bookkeeping, for `ps` and `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartState {
    /// Restarts done by this shim.
    pub count: u32,
    /// Waiting out the back-off before the next start.
    pub restarting: bool,
    /// How the previous run ended.
    pub last_exit: Option<ExitRecord>,
    /// The last back-off wait, in milliseconds (0: none yet).
    #[serde(default)]
    pub backoff_ms: u64,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Docker's exit code: the status, 128 + signal, or 125/126/127 when
    /// the command never ran.
    pub code: i32,
    pub oom_killed: bool,
    /// Seconds since the Unix epoch.
    pub finished_at: u64,
    /// Why the container never ran, if it did not.
    pub error: Option<String>,
}

/// Write `bytes` to `path` so that a reader sees all or nothing, and so
/// that the file survives a power cut (temp file, fsync, rename); the file
/// is [`FILE_MODE`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replacing(path, bytes, true)
}

/// [`write_atomic`] without the fsync: a reader still sees all or nothing
/// (a killed writer leaves the old file or none), but a power cut may
/// leave the file empty or missing. Only for files that nothing needs
/// after a power cut: the pids of processes the cut ended, the records of
/// a `--rm` container (start-up removes such a container whatever its
/// files say). On a busy disk an fsync costs milliseconds, and a container
/// start-to-exit made four of them.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replacing(path, bytes, false)
}

fn write_replacing(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The exit record in a container directory, if the container has ended.
pub fn read_exit(dir: &Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(dir.join("exit.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The restart state in a container directory (default when absent).
pub fn read_restart_state(dir: &Path) -> RestartState {
    std::fs::read(dir.join(RESTART_STATE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// What `berth-shim exec` runs in a container (its `--config` argument).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    /// `-e KEY=VALUE` on top of the container's environment.
    pub env: Vec<String>,
    /// Who the command runs as: `-u user[:group]` as the daemon resolved
    /// it, once, in the running container (the ids its `pre-exec` hooks
    /// judged), taken as they are; `None`: the container's own user.
    pub user: Option<crate::ExecUser>,
    /// `-w DIR`.
    pub workdir: Option<String>,
    /// `-t`: a terminal of (rows, columns).
    pub tty: Option<(u16, u16)>,
    /// `-i` (with `-t`: relay stdin to the terminal).
    pub interactive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_files_and_dirs_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("containers/abc");
        create_private_dir(&dir).unwrap();
        write_atomic(&dir.join("shim.json"), b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join("containers")), DIR_MODE);
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(&dir.join("shim.json")), FILE_MODE);
    }

    #[test]
    fn policies_parse_like_docker() {
        assert_eq!("no".parse::<RestartPolicy>().unwrap(), RestartPolicy::No);
        assert_eq!(
            "on-failure:2".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure { max: 2 }
        );
        assert_eq!(
            "on-failure".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure { max: 0 }
        );
        assert_eq!(
            "unless-stopped".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::UnlessStopped
        );
        for bad in ["sometimes", "always:3", "on-failure:x", "on-failure:-1"] {
            let e = bad.parse::<RestartPolicy>().unwrap_err().to_string();
            assert!(e.contains("on-failure[:max-retries]"), "{e}");
        }
        assert_eq!(
            RestartPolicy::OnFailure { max: 2 }.to_string(),
            "on-failure:2"
        );
    }

    #[test]
    fn on_failure_counts_and_manual_stop_wins() {
        let p = RestartPolicy::OnFailure { max: 2 };
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 100, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(RestartPolicy::Always.revive_on_boot(true));
        assert!(!RestartPolicy::UnlessStopped.revive_on_boot(true));
        assert!(RestartPolicy::UnlessStopped.revive_on_boot(false));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        assert_eq!(b.next(quick), Duration::from_millis(100));
        assert_eq!(b.next(quick), Duration::from_millis(200));
        assert_eq!(b.next(quick), Duration::from_millis(400));
        for _ in 0..20 {
            b.next(quick);
        }
        assert_eq!(b.next(quick), Duration::from_secs(60));
        assert_eq!(b.next(Duration::from_secs(10)), Duration::from_millis(100));
    }
}
