//! `/v1/images`: the local image store, pulls and pushes (streamed as
//! NDJSON progress events), tags and prunes — parse, call the engine's
//! image service, render.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_client::Progress;
use berth_state::ImageRecord;
use futures::StreamExt;

use super::progress::{ChannelProgress, Event};
use super::{ControlError, Shared};

pub use berth_api_types::{Auth, PullRequest, PushRequest, RefQuery, TagRequest};

fn engine_auth(auth: Option<Auth>) -> Option<berth_engine::images::Auth> {
    auth.map(|a| berth_engine::images::Auth {
        username: a.username,
        password: a.password,
    })
}

type Job = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<serde_json::Value, ControlError>> + Send>,
>;

/// Run `job` and stream its progress, then its result, as NDJSON.
fn stream(job: impl FnOnce(Arc<dyn Progress>) -> Job) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress: Arc<dyn Progress> = Arc::new(ChannelProgress(tx.clone()));
    let fut = job(progress);
    tokio::spawn(async move {
        let last = match fut.await {
            Ok(result) => Event::Done { result },
            Err(e) => Event::Error {
                code: e.code.to_string(),
                message: e.message,
            },
        };
        let _ = tx.send(last);
    });
    let lines = tokio_stream_from(rx).map(|ev| {
        let mut line = serde_json::to_vec(&ev).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> impl futures::Stream<Item = Event> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub(crate) async fn info(State(app): Shared) -> impl IntoResponse {
    axum::Json(berth_api_types::Info {
        version: env!("CARGO_PKG_VERSION").to_string(),
        root: app.root.clone(),
        images: app
            .engine
            .images()
            .list()
            .map(|v| v.len() as u64)
            .unwrap_or(0),
    })
}

pub(crate) async fn list(State(app): Shared) -> Result<axum::Json<Vec<ImageRecord>>, ControlError> {
    Ok(axum::Json(app.engine.images().list()?))
}

pub(crate) async fn pull(
    State(app): Shared,
    axum::Json(req): axum::Json<PullRequest>,
) -> Result<Response, ControlError> {
    let pull = app
        .engine
        .images()
        .pull_request(
            &req.reference,
            req.platform.as_deref(),
            engine_auth(req.auth),
        )
        .await?;
    Ok(stream(move |progress| {
        Box::pin(async move {
            let record = pull.run(progress).await?;
            serde_json::to_value(&record).map_err(ControlError::internal)
        })
    }))
}

pub(crate) async fn push(
    State(app): Shared,
    axum::Json(req): axum::Json<PushRequest>,
) -> Result<Response, ControlError> {
    let push = app
        .engine
        .images()
        .push_request(&req.reference, engine_auth(req.auth))
        .await?;
    Ok(stream(move |progress| {
        Box::pin(async move {
            let reference = push.reference().to_string();
            let pushed = push.run(progress).await?;
            serde_json::to_value(berth_api_types::PushResponse {
                reference,
                digest: pushed.digest.to_string(),
                size: pushed.size,
            })
            .map_err(ControlError::internal)
        })
    }))
}

pub(crate) async fn tag(
    State(app): Shared,
    axum::Json(req): axum::Json<TagRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let image = app.engine.images().tag(&req.source, &req.target)?;
    Ok((StatusCode::CREATED, axum::Json(image)))
}

pub(crate) async fn remove(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    Ok(axum::Json(app.engine.images().remove(&q.reference)?))
}

pub(crate) async fn prune(State(app): Shared) -> Result<impl IntoResponse, ControlError> {
    let report = app.engine.images().prune().await?;
    Ok(axum::Json(berth_api_types::ImagePruneResponse {
        snapshots_removed: report.snapshots_removed,
        blobs_deleted: report.blobs_deleted,
        bytes_freed: report.bytes_freed,
    }))
}
