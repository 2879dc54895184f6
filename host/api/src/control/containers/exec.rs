//! `POST /v1/containers/{id}/exec`: `docker exec` through a `berth-shim
//! exec` helper (joining a mount namespace needs a single-threaded process).
//!
//! The request body is one line of JSON ([`ExecRequest`]) and then, when
//! `stdin` is set, the bytes for the command's standard input until the
//! body ends. The answer streams as Docker's multiplexed framing
//! (`application/vnd.docker.multiplexed-stream`): frames of
//! `[stream, 0, 0, 0, length as u32 big-endian]` and the payload; stream 1
//! is stdout, 2 stderr, and a last frame on stream 3 carries the exit code
//! as decimal text. With `detach` the answer is JSON and nothing streams.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::record::{ContainerRecord, Status, find, load_spec, running_init, status_of};
use crate::control::{ControlApp, ControlError, Shared};
use berth_runtime::shim_files::ExecConfig;
use berth_runtime::{ExecUser, RuntimeError};

/// The media type of the streamed answer.
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";

/// Frame stream numbers.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;

use berth_api_types::ExecDetached;
pub use berth_api_types::ExecRequest;

/// The longest first line accepted.
const MAX_REQUEST: usize = 1 << 20;

pub(crate) fn not_running(record: &ContainerRecord) -> ControlError {
    ControlError::new(
        StatusCode::CONFLICT,
        "not_running",
        format!(
            "container {} is not running: start it (or run a new one) before exec",
            record.name
        ),
    )
}

/// Who a command run in `record` runs as: `user` (`-u user[:group]`)
/// resolved in the running container's own `/etc/passwd` and
/// `/etc/group`, read through its init checked by pidfd; else the
/// container's user from its runtime spec. Resolved once: these ids are
/// what the `pre-exec` hooks judge and, unchanged, what the helper runs
/// the command as. The container can rewrite its `/etc/passwd` at any
/// time, so a name looked up again by the helper could be judged as one
/// user and run as another (root). The inner error is the container's
/// (an unknown user or group, unreadable files): the command cannot run.
/// Blocking.
pub(crate) fn exec_user(
    record: &ContainerRecord,
    user: Option<&str>,
) -> Result<Result<ExecUser, RuntimeError>, ControlError> {
    let spec = load_spec(record)?;
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        let process = spec.process().as_ref().ok_or_else(|| {
            ControlError::internal(format!(
                "the runtime spec of container {} has no process section",
                record.name
            ))
        })?;
        let u = process.user();
        return Ok(Ok(ExecUser {
            uid: u.uid(),
            gid: u.gid(),
            additional_gids: u.additional_gids().clone().unwrap_or_default(),
        }));
    };
    let Status::Running { pid } = status_of(&record.dir) else {
        return Err(not_running(record));
    };
    let init = running_init(record, pid, &spec)?;
    let root = init
        .root()
        .map_err(|e| ControlError::internal(format!("container {}: {e}", record.name)))?;
    let root = berth_fsroot::Root::from_fd(root, format!("/proc/{pid}/root"));
    Ok(berth_runtime::resolve_user_in(&root, user).map(ExecUser::from))
}

/// The answer to an exec whose command cannot run: `message` on stderr
/// and exit code 126, as the helper (and `docker exec`) answers.
fn cannot_run(message: String) -> Result<Response, ControlError> {
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    for f in [frame(STDERR, message.as_bytes()), frame(EXIT, b"126")] {
        tx.try_send(f).map_err(ControlError::internal)?;
    }
    multiplexed(rx)
}

/// The helper command for `config` in the container of `dir`.
pub(crate) fn helper(
    app: &ControlApp,
    dir: &Path,
    config: &ExecConfig,
) -> Result<tokio::process::Command, ControlError> {
    let json = serde_json::to_string(config).map_err(ControlError::internal)?;
    let mut cmd = tokio::process::Command::new(&app.shim);
    cmd.arg("exec")
        .arg("--dir")
        .arg(dir)
        .arg("--config")
        .arg(json)
        .kill_on_drop(true);
    Ok(cmd)
}

fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + data.len());
    b.extend_from_slice(&[stream, 0, 0, 0]);
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b.freeze()
}

/// Copy `r` into frames of `stream` until EOF or until nobody listens.
async fn pump<R: AsyncRead + Unpin>(mut r: R, stream: u8, tx: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(stream, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

pub(crate) async fn exec(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    body: Body,
) -> Result<Response, ControlError> {
    let record = find(&app, &key)?;
    if !matches!(status_of(&record.dir), Status::Running { .. }) {
        return Err(not_running(&record));
    }
    // A command joining a frozen cgroup would hang until unpause.
    if super::resources::paused(&record) {
        return Err(ControlError::new(
            StatusCode::CONFLICT,
            "paused",
            format!(
                "container {} is paused: unpause it before exec",
                record.name
            ),
        ));
    }
    let mut body = body.into_data_stream();
    let mut head = BytesMut::new();
    let newline = loop {
        if let Some(i) = head.iter().position(|b| *b == b'\n') {
            break i;
        }
        if head.len() > MAX_REQUEST {
            return Err(ControlError::bad_request(
                "the exec request's first line (JSON) is longer than 1 MiB",
            ));
        }
        match body.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => {
                return Err(ControlError::bad_request(format!(
                    "reading the request: {e}"
                )));
            }
            None => break head.len(),
        }
    };
    // The bytes after the newline are already the command's stdin.
    let rest: Bytes = if newline < head.len() {
        head.split_off(newline).freeze().slice(1..)
    } else {
        Bytes::new()
    };
    let req: ExecRequest = serde_json::from_slice(&head).map_err(|e| {
        ControlError::bad_request(format!(
            "the exec request must start with a JSON line such as {{\"cmd\":[\"ls\"]}}: {e}"
        ))
    })?;
    if req.cmd.is_empty() {
        return Err(ControlError::bad_request(
            "no command: give the command to run after the container's name",
        ));
    }
    let resolved = {
        let (record, user) = (record.clone(), req.user.clone());
        tokio::task::spawn_blocking(move || exec_user(&record, user.as_deref()))
            .await
            .map_err(ControlError::internal)??
    };
    let ids = match resolved {
        Ok(ids) => ids,
        Err(e) if req.detach => {
            return Err(ControlError::bad_request(format!(
                "exec in container {}: {e}",
                record.name
            )));
        }
        Err(e) => return cannot_run(format!("berth: exec failed: {e}\n")),
    };
    super::policy::judge_exec(&app, &record, &req, &ids).await?;
    let config = ExecConfig {
        cmd: req.cmd.clone(),
        env: req.env.clone(),
        user: Some(ids),
        workdir: req.workdir.clone(),
        tty: req.tty.then(|| req.tty_size.unwrap_or((24, 80))),
        interactive: req.stdin,
    };
    let mut cmd = helper(&app, &record.dir, &config)?;
    if req.detach {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|e| ControlError::internal(format!("starting {}: {e}", app.shim.display())))?;
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        return Ok(axum::Json(ExecDetached { id: record.id }).into_response());
    }
    cmd.stdin(if req.stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ControlError::internal(format!("starting {}: {e}", app.shim.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            if !rest.is_empty() && stdin.write_all(&rest).await.is_err() {
                return;
            }
            while let Some(Ok(chunk)) = body.next().await {
                if stdin.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            // Dropping stdin is the command's EOF.
        });
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let out = child.stdout.take();
    let err = child.stderr.take();
    tokio::spawn(async move {
        let a = out.map(|o| tokio::spawn(pump(o, STDOUT, tx.clone())));
        let b = err.map(|e| tokio::spawn(pump(e, STDERR, tx.clone())));
        for h in [a, b].into_iter().flatten() {
            let _ = h.await;
        }
        // Both streams ended: the command has exited or closed them.
        let code = tokio::select! {
            s = child.wait() => s.ok().and_then(|s| s.code()).unwrap_or(125),
            _ = tx.closed() => {
                // The client went away: the command goes with it.
                let _ = child.kill().await;
                return;
            }
        };
        let _ = tx.send(frame(EXIT, code.to_string().as_bytes())).await;
    });
    multiplexed(rx)
}

/// A response streaming the frames sent to `rx` (exec and attach).
pub(crate) fn multiplexed(rx: mpsc::Receiver<Bytes>) -> Result<Response, ControlError> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, MULTIPLEXED)
        .body(Body::from_stream(stream))
        .map_err(ControlError::internal)
}
/// What one run of a command gave: its exit code (`None` on timeout) and
/// its output, stdout and stderr together, cut at `limit` bytes.
pub(crate) struct Captured {
    pub code: Option<i32>,
    pub output: String,
}

/// Run `config` in the container of `dir` to its end or `timeout`,
/// capturing output (health checks).
pub(crate) async fn capture(
    app: &ControlApp,
    dir: &Path,
    config: &ExecConfig,
    timeout: Duration,
    limit: usize,
) -> Result<Captured, ControlError> {
    let mut cmd = helper(app, dir, config)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ControlError::internal(format!("starting {}: {e}", app.shim.display())))?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    if let Some(o) = child.stdout.take() {
        tokio::spawn(pump(o, STDOUT, tx.clone()));
    }
    if let Some(e) = child.stderr.take() {
        tokio::spawn(pump(e, STDERR, tx.clone()));
    }
    drop(tx);
    let mut output = Vec::new();
    let run = async {
        while let Some(f) = rx.recv().await {
            let data = &f[8..];
            let room = limit.saturating_sub(output.len());
            output.extend_from_slice(&data[..data.len().min(room)]);
        }
        child.wait().await
    };
    let code = match tokio::time::timeout(timeout, run).await {
        Ok(Ok(s)) => Some(s.code().unwrap_or(125)),
        Ok(Err(e)) => {
            return Err(ControlError::internal(format!(
                "waiting for the check: {e}"
            )));
        }
        Err(_) => {
            // SIGKILL to the helper; its command dies with it (PDEATHSIG).
            let _ = child.kill().await;
            None
        }
    };
    Ok(Captured {
        code,
        output: String::from_utf8_lossy(&output).into_owned(),
    })
}
