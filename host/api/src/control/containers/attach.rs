//! `POST /v1/containers/{id}/attach` and `POST /v1/containers/{id}/resize`:
//! `docker attach` and the window size of a container's terminal, relayed
//! to the container's monitor over its attach socket (see
//! `berth_runtime::attach`), so they work the same after a daemon restart.
//!
//! Attach takes Docker's `?stdin=1` (also `true`); the request body is the
//! container's stdin, streamed, raw (its end is the end of this client's
//! stdin; a connection lost mid-body is a client gone). The answer streams
//! in the exec endpoint's framing: `[stream, 0, 0, 0, len u32 BE]` and the
//! payload, stream 1 stdout (a terminal's output too), 2 stderr, and a
//! last frame on stream 3 with the exit code in decimal when the run
//! ends. As Docker's, attaching to a container that is not running
//! (created, or exited) waits for its next start (`run -it` and
//! `start -a` attach first, then start) and then sees all of its output;
//! a paused or restarting one is refused. Only containers created with
//! `-i` or `-t` can be attached to; one client at a time, the newest wins.
//!
//! Resize takes Docker's `?h=ROWS&w=COLUMNS`.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_runtime::attach;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use super::record::{ContainerRecord, Status, find, shim_alive, status_of};
use crate::control::{ControlError, Shared};

/// Clients attached to containers that are created but not yet started.
#[derive(Debug, Default)]
pub struct Attaches {
    waiting: Mutex<HashMap<String, Vec<Waiter>>>,
}

#[derive(Debug)]
struct Waiter {
    stdin: bool,
    conn: oneshot::Sender<UnixStream>,
}

impl Attaches {
    fn wait(&self, id: &str, stdin: bool) -> oneshot::Receiver<UnixStream> {
        let (conn, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.entry(id.to_string())
                .or_default()
                .push(Waiter { stdin, conn });
        }
        rx
    }

    /// Forget the clients waiting for a container that is gone.
    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(id);
        }
    }

    /// Connect the clients waiting for `record` to start. Called once its
    /// monitor listens (it wrote the pid file) and before the container
    /// is let go, so they see all of its output.
    pub(crate) async fn connect_waiting(&self, record: &ContainerRecord) {
        let waiting = match self.waiting.lock() {
            Ok(mut w) => w.remove(&record.id).unwrap_or_default(),
            Err(_) => return,
        };
        for w in waiting {
            if w.conn.is_closed() {
                continue;
            }
            match open(&record.dir, &attach::hello(w.stdin)).await {
                Ok(conn) => {
                    let _ = w.conn.send(conn);
                }
                Err(e) => tracing::warn!(
                    container = %record.name,
                    error = %e,
                    "attaching a waiting client"
                ),
            }
        }
    }
}

/// A connection to the monitor's attach socket, `first` frame sent.
async fn open(dir: &Path, first: &[u8]) -> std::io::Result<UnixStream> {
    let at = std::fs::File::open(dir)?;
    let mut conn = UnixStream::connect(attach::socket_path(at.as_raw_fd())).await?;
    drop(at);
    conn.write_all(first).await?;
    Ok(conn)
}

fn conflict(code: &'static str, message: String) -> ControlError {
    ControlError::new(StatusCode::CONFLICT, code, message)
}

fn not_running(r: &ContainerRecord) -> ControlError {
    conflict(
        "not_running",
        format!(
            "container {} is not running: `berth start -a -i {}` starts it attached",
            r.name, r.name
        ),
    )
}

pub use berth_api_types::AttachQuery;

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "true" | "True"))
}

pub(crate) async fn attach(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<AttachQuery>,
    body: Body,
) -> Result<Response, ControlError> {
    let r = find(&app, &key)?;
    if !r.tty && !r.open_stdin {
        return Err(conflict(
            "not_attachable",
            format!(
                "container {} was created without -i or -t, so there is nothing to attach to: `berth logs -f {}` follows its output",
                r.name, r.name
            ),
        ));
    }
    let stdin = truthy(q.stdin.as_deref()) && r.open_stdin;
    if super::resources::paused(&r) {
        return Err(conflict(
            "paused",
            format!("container {} is paused: unpause it before attach", r.name),
        ));
    }
    let conn: BoxFuture<'static, Option<UnixStream>> = match status_of(&r.dir) {
        Status::Running { .. } => {
            let conn = open(&r.dir, &attach::hello(stdin)).await.map_err(|e| {
                tracing::debug!(container = %r.name, error = %e, "attach socket");
                not_running(&r)
            })?;
            Box::pin(async move { Some(conn) })
        }
        Status::Created | Status::Exited { .. } if !shim_alive(&r.dir) => {
            let rx = app.attaches.wait(&r.id, stdin);
            Box::pin(async move { rx.await.ok() })
        }
        // Its monitor is starting it, or recording its end.
        Status::Created | Status::Exited { .. } => {
            return Err(conflict(
                "busy",
                format!(
                    "container {} is starting or stopping: attach again in a moment",
                    r.name
                ),
            ));
        }
        Status::Restarting { .. } => {
            return Err(conflict(
                "restarting",
                format!(
                    "container {} is waiting to be restarted by its policy: attach once it runs again",
                    r.name
                ),
            ));
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(relay(conn, body, stdin, tx));
    super::exec::multiplexed(rx)
}

/// The monitor's frames to the client as they are; the client's body to
/// the monitor as stdin frames. Ends when either side does.
async fn relay(
    conn: BoxFuture<'static, Option<UnixStream>>,
    body: Body,
    stdin: bool,
    tx: mpsc::Sender<Bytes>,
) {
    let conn = tokio::select! {
        c = conn => c,
        _ = tx.closed() => None,
    };
    let Some(conn) = conn else {
        return;
    };
    let (mut from_shim, to_shim) = conn.into_split();
    let (done, done_rx) = oneshot::channel::<()>();
    tokio::spawn(forward_input(body, to_shim, stdin, done_rx));
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            n = from_shim.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            },
            _ = tx.closed() => break,
        }
    }
    drop(done);
}

/// The request body into stdin frames; its clean end is the client's
/// stdin closing, its failure the client leaving. Dropping `to_shim`
/// shuts the connection's write side, which the monitor takes as the
/// client gone, so it is kept until the output side is `done`.
async fn forward_input(
    body: Body,
    mut to_shim: OwnedWriteHalf,
    stdin: bool,
    mut done: oneshot::Receiver<()>,
) {
    let mut body = body.into_data_stream();
    loop {
        tokio::select! {
            _ = &mut done => return,
            chunk = body.next() => match chunk {
                Some(Ok(data)) if stdin => {
                    for part in data.chunks(attach::MAX_PAYLOAD) {
                        if to_shim.write_all(&attach::frame(attach::STDIN, part)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => return,
                None => {
                    if stdin {
                        let _ = to_shim.write_all(&attach::frame(attach::CLOSE_STDIN, &[])).await;
                    }
                    let _ = done.await;
                    return;
                }
            }
        }
    }
}

pub use berth_api_types::ResizeQuery;

pub(crate) async fn resize(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<ResizeQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let dimension = |name: &str, v: Option<&str>| -> Result<u16, ControlError> {
        v.and_then(|v| v.parse().ok()).ok_or_else(|| {
            ControlError::bad_request(format!(
                "resize needs {name} as a number from 0 to 65535, e.g. ?h=24&w=80"
            ))
        })
    };
    let (rows, cols) = (
        dimension("h", q.h.as_deref())?,
        dimension("w", q.w.as_deref())?,
    );
    let r = find(&app, &key)?;
    if !r.tty {
        return Err(conflict(
            "no_terminal",
            format!(
                "container {} has no terminal to resize: it was created without -t",
                r.name
            ),
        ));
    }
    if !matches!(status_of(&r.dir), Status::Running { .. }) {
        return Err(not_running(&r));
    }
    open(&r.dir, &attach::resize(rows, cols))
        .await
        .map_err(|_| not_running(&r))?;
    Ok(StatusCode::NO_CONTENT)
}
