//! `GET /v1/containers/{id}/logs`: the container log, streamed. The body
//! is the log's own entries (`TIMESTAMP STREAM F|P CONTENT`, see
//! `berth_runtime::logfile`), so the client keeps stdout and stderr apart
//! and prints timestamps if asked; `tail`, `since` and `until` are applied
//! here, and `follow` keeps the body open until the container is over
//! (across restarts by its policy, which append to the same log).

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_runtime::logfile::{LogReader, format_timestamp, parse_entry};

use super::record::{Status, find, status_of};
use crate::control::{ControlError, Shared};

pub use berth_api_types::LogsQuery;

/// Entries are batched up to this size per chunk of the body.
const CHUNK: usize = 64 * 1024;
/// How often a follower looks for new entries.
const POLL: Duration = Duration::from_millis(50);

fn bound(secs: Option<f64>, what: &str) -> Result<Option<String>, ControlError> {
    secs.map(|s| {
        // Years past 9999 would not compare as text; nothing is logged then.
        let d = Duration::try_from_secs_f64(s.min(253_402_300_799.0)).map_err(|_| {
            ControlError::bad_request(format!("{what} {s}: use a time after 1970 (unix seconds)"))
        })?;
        Ok(format_timestamp(UNIX_EPOCH + d))
    })
    .transpose()
}

pub(crate) async fn logs(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ControlError> {
    let r = find(&app, &key)?;
    let tail = match q.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ControlError::bad_request(format!("--tail {n:?}: use a number of lines or \"all\""))
        })?),
    };
    let filter = Filter {
        since: bound(q.since, "--since")?,
        until: bound(q.until, "--until")?,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let dir = r.dir.clone();
    let follow = q.follow;
    tokio::task::spawn_blocking(move || {
        if let Err(e) = stream(&dir, tail, &filter, follow, &tx)
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::warn!(dir = %dir.display(), error = %e, "streaming a container log");
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Ok((
        StatusCode::OK,
        [("content-type", "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
        .into_response())
}

struct Filter {
    since: Option<String>,
    until: Option<String>,
}

impl Filter {
    fn keeps(&self, line: &[u8]) -> bool {
        parse_entry(line).is_some_and(|e| {
            self.since.as_deref().is_none_or(|s| e.timestamp >= s)
                && self.until.as_deref().is_none_or(|u| e.timestamp <= u)
        })
    }
}

/// Batches entries into chunks for the body; a gone client is BrokenPipe.
struct Sender<'a> {
    tx: &'a tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Sender<'_> {
    fn push(&mut self, line: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(line);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.tx
            .blocking_send(std::mem::take(&mut self.buf))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

fn stream(
    dir: &Path,
    tail: Option<usize>,
    filter: &Filter,
    follow: bool,
    tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> io::Result<()> {
    let mut out = Sender {
        tx,
        buf: Vec::new(),
    };
    let mut reader = match tail {
        // Only the last `n` entries are kept while reading: memory stays
        // bounded by n, whatever the log's size.
        Some(n) => {
            let mut last: VecDeque<Vec<u8>> = VecDeque::with_capacity(n.min(4096));
            let reader = LogReader::read_all(dir, &mut |line| {
                if n > 0 && filter.keeps(line) {
                    if last.len() == n {
                        last.pop_front();
                    }
                    last.push_back(line.to_vec());
                }
                Ok(())
            })?;
            for line in last {
                out.push(&line)?;
            }
            reader
        }
        None => LogReader::read_all(dir, &mut |line| {
            if filter.keeps(line) {
                out.push(line)?;
            }
            Ok(())
        })?,
    };
    out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        // Decided before the last read: whatever the shim wrote before it
        // recorded the end is read below.
        let over = !dir.exists() || matches!(status_of(dir), Status::Exited { .. });
        reader.poll(&mut |line| {
            if filter.keeps(line) {
                out.push(line)?;
            }
            Ok(())
        })?;
        out.flush()?;
        if over || out.tx.is_closed() {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}
