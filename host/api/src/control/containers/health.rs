//! Health checks, with Docker's semantics: the check runs every
//! `interval` through the exec path; exit 0 is healthy, anything else (or
//! exceeding `timeout`) a failure; failures while still `starting` within
//! `start_period` do not count; `retries` failures in a row make the
//! container `unhealthy`. The state (`health.json` in the container's
//! directory, written crash-safely) survives a daemon restart, and the
//! restarted daemon resumes checking ([`resume_all`]).
//!
//! [`HealthMonitors::subscribe`] is the seam for events: every status
//! change is sent there.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::record::{ContainerRecord, Status, status_of, tree};
use crate::control::ControlApp;
use berth_runtime::shim_files::{ExecConfig, write_atomic};

/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u32 = 3;
/// Results kept in the log, and output kept per result, as Docker.
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// A container's resolved health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

impl HealthConfig {
    /// The command the check runs, or `None` for a test that is not one.
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
            Some((kind, [cmd])) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()])
            }
            _ => None,
        }
    }
}

pub use berth_api_types::HealthFlags;

/// Docker's merge: `--no-healthcheck` wins; `--health-cmd` replaces the
/// image's test; each other flag replaces the image's value; zero means
/// the default. `None` when there is nothing to check.
pub fn resolve(
    image: Option<&berth_image::Healthcheck>,
    flags: &HealthFlags,
) -> Result<Option<HealthConfig>, String> {
    if flags.disable {
        if flags.cmd.is_some() {
            return Err("--no-healthcheck conflicts with --health-cmd: give one".into());
        }
        return Ok(None);
    }
    let test = match &flags.cmd {
        Some(c) if c.trim().is_empty() => return Err("--health-cmd is empty".into()),
        Some(c) => vec!["CMD-SHELL".to_string(), c.clone()],
        None => image.map(|h| h.test.clone()).unwrap_or_default(),
    };
    if test.is_empty() || test[0] == "NONE" {
        return Ok(None);
    }
    let pick =
        |flag: Option<i64>, img: Option<i64>, name: &str, default: Duration| match flag.or(img) {
            Some(n) if n < 0 => Err(format!("{name} must not be negative")),
            Some(0) | None => Ok(default),
            Some(n) => Ok(Duration::from_nanos(n as u64)),
        };
    let config = HealthConfig {
        interval: pick(
            flags.interval,
            image.and_then(|h| h.interval),
            "--health-interval",
            DEFAULT_INTERVAL,
        )?,
        timeout: pick(
            flags.timeout,
            image.and_then(|h| h.timeout),
            "--health-timeout",
            DEFAULT_TIMEOUT,
        )?,
        start_period: pick(
            flags.start_period,
            image.and_then(|h| h.start_period),
            "--health-start-period",
            Duration::ZERO,
        )?,
        retries: match flags.retries.or(image.and_then(|h| h.retries)) {
            Some(n) if n < 0 => return Err("--health-retries must not be negative".into()),
            Some(0) | None => DEFAULT_RETRIES,
            Some(n) => u32::try_from(n).map_err(|_| "--health-retries is too large")?,
        },
        test,
    };
    if config.command().is_none() {
        return Err(format!(
            "health check test {:?}: use [\"CMD\", args...] or [\"CMD-SHELL\", command]",
            config.test
        ));
    }
    Ok(Some(config))
}

pub use berth_api_types::{HealthResult, HealthState};

/// A change of a container's health status, for events.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthEvent {
    pub id: String,
    pub name: String,
    pub status: String,
}

/// The running checkers, one per container, and the event channel.
#[derive(Debug)]
pub struct HealthMonitors {
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
    events: broadcast::Sender<HealthEvent>,
}

impl Default for HealthMonitors {
    fn default() -> Self {
        HealthMonitors {
            tasks: Mutex::default(),
            events: broadcast::channel(64).0,
        }
    }
}

impl HealthMonitors {
    /// Health status changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HealthEvent> {
        self.events.subscribe()
    }

    fn insert(&self, id: &str, task: JoinHandle<()>) {
        if let Ok(mut t) = self.tasks.lock()
            && let Some(old) = t.insert(id.to_string(), task)
        {
            old.abort();
        }
    }

    /// Stop checking container `id`.
    pub fn stop(&self, id: &str) {
        if let Ok(mut t) = self.tasks.lock()
            && let Some(task) = t.remove(id)
        {
            task.abort();
        }
    }
}

const STATE_FILE: &str = "health.json";

/// The health state in a container directory, if it has a check.
pub fn read_state(dir: &Path) -> Option<HealthState> {
    let bytes = std::fs::read(dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_state(dir: &Path, state: &HealthState) {
    let result = serde_json::to_vec(state)
        .map_err(std::io::Error::other)
        .and_then(|b| write_atomic(&dir.join(STATE_FILE), &b));
    if let Err(e) = result {
        tracing::warn!(dir = %dir.display(), error = %e, "writing the health state");
    }
}

/// When the container started: the shim writes `pid` at creation.
fn started_at(dir: &Path) -> SystemTime {
    std::fs::metadata(dir.join("pid"))
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now())
}

/// Start checking `record`'s container (no-op without a check).
pub(crate) fn start(app: &Arc<ControlApp>, record: &ContainerRecord) {
    let Some(config) = record.healthcheck.clone() else {
        return;
    };
    if read_state(&record.dir).is_none() {
        write_state(&record.dir, &HealthState::default());
    }
    let task = tokio::spawn(check_loop(app.clone(), record.clone(), config));
    app.health.insert(&record.id, task);
}

/// At daemon start: resume the checks of running containers.
pub async fn resume_all(app: &Arc<ControlApp>) {
    let Ok(t) = tree(app) else { return };
    let Ok(all) = t.list::<ContainerRecord>() else {
        return;
    };
    for (_, r) in all {
        if r.healthcheck.is_some() && matches!(status_of(&r.dir), Status::Running { .. }) {
            start(app, &r);
        }
    }
}

async fn check_loop(app: Arc<ControlApp>, record: ContainerRecord, config: HealthConfig) {
    let Some(cmd) = config.command() else { return };
    let exec = ExecConfig {
        cmd,
        ..ExecConfig::default()
    };
    let started = started_at(&record.dir);
    loop {
        tokio::time::sleep(config.interval).await;
        if !matches!(status_of(&record.dir), Status::Running { .. }) {
            break;
        }
        // A paused container is not checked: the check would hang frozen
        // and count as a timeout.
        if super::resources::paused(&record) {
            continue;
        }
        let begin = SystemTime::now();
        let run = super::exec::capture(&app, &record.dir, &exec, config.timeout, MAX_OUTPUT).await;
        let end = SystemTime::now();
        let (exit_code, output) = match run {
            Ok(c) => match c.code {
                Some(code) => (code, c.output),
                None => (
                    -1,
                    format!("Health check exceeded timeout ({:?})", config.timeout),
                ),
            },
            Err(e) => (-1, format!("running the health check: {e}")),
        };
        // A check that raced the container's end says nothing about health.
        if !matches!(status_of(&record.dir), Status::Running { .. }) {
            break;
        }
        let mut state = read_state(&record.dir).unwrap_or_default();
        let before = state.status.clone();
        let in_start_period = begin
            .duration_since(started)
            .is_ok_and(|d| d < config.start_period);
        apply_result(&mut state, exit_code, in_start_period, config.retries);
        state.log.push(HealthResult {
            start: rfc3339_nanos(begin),
            end: rfc3339_nanos(end),
            exit_code,
            output,
        });
        let excess = state.log.len().saturating_sub(MAX_LOG);
        state.log.drain(..excess);
        write_state(&record.dir, &state);
        if state.status != before {
            tracing::info!(container = %record.name, status = %state.status, "health status changed");
            let _ = app.health.events.send(HealthEvent {
                id: record.id.clone(),
                name: record.name.clone(),
                status: state.status.clone(),
            });
        }
    }
}

/// Docker's state machine for one result.
pub fn apply_result(state: &mut HealthState, exit_code: i32, in_start_period: bool, retries: u32) {
    if exit_code == 0 {
        state.status = "healthy".into();
        state.failing_streak = 0;
        return;
    }
    if state.status == "starting" && in_start_period {
        return;
    }
    state.failing_streak += 1;
    if state.failing_streak >= retries {
        state.status = "unhealthy".into();
    }
}

fn rfc3339_nanos(t: SystemTime) -> String {
    let nanos = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let whole = berth_image::rfc3339(t);
    format!("{}.{nanos:09}Z", whole.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn docker_state_machine() {
        let mut s = HealthState::default();
        apply_result(&mut s, 1, true, 2);
        assert_eq!((s.status.as_str(), s.failing_streak), ("starting", 0));
        apply_result(&mut s, 1, false, 2);
        assert_eq!((s.status.as_str(), s.failing_streak), ("starting", 1));
        apply_result(&mut s, 0, false, 2);
        assert_eq!((s.status.as_str(), s.failing_streak), ("healthy", 0));
        apply_result(&mut s, 1, true, 2);
        assert_eq!((s.status.as_str(), s.failing_streak), ("healthy", 1));
        apply_result(&mut s, -1, false, 2);
        assert_eq!((s.status.as_str(), s.failing_streak), ("unhealthy", 2));
    }

    #[test]
    fn flags_over_image() {
        let image = berth_image::Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(2_000_000_000),
            retries: Some(5),
            ..Default::default()
        };
        let c = resolve(Some(&image), &HealthFlags::default())
            .unwrap()
            .unwrap();
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!((c.timeout, c.retries), (DEFAULT_TIMEOUT, 5));
        let flags = HealthFlags {
            cmd: Some("exit 1".into()),
            interval: Some(1_000_000_000),
            ..Default::default()
        };
        let c = resolve(Some(&image), &flags).unwrap().unwrap();
        assert_eq!(c.command().unwrap(), vec!["/bin/sh", "-c", "exit 1"]);
        assert_eq!(c.interval, Duration::from_secs(1));
        let off = HealthFlags {
            disable: true,
            ..Default::default()
        };
        assert_eq!(resolve(Some(&image), &off).unwrap(), None);
        assert_eq!(resolve(None, &HealthFlags::default()).unwrap(), None);
        let none = berth_image::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(resolve(Some(&none), &HealthFlags::default()).unwrap(), None);
        let negative = HealthFlags {
            cmd: Some("true".into()),
            retries: Some(-1),
            ..Default::default()
        };
        assert!(resolve(None, &negative).is_err());
    }
}
