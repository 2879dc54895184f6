//! `/v1/images`: the local image store, and pulls and pushes through the
//! registry client.

use std::sync::Arc;

use berth_policy::Event as HookEvent;

use super::policy::image_event;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_client::{Credentials, Platform, Progress, RegistryClient};
use berth_oci::Reference;
use berth_state::ImageRecord;
use futures::StreamExt;

use super::progress::{ChannelProgress, Event};
use super::{ControlApp, ControlError, LocalBlobs, Shared};

pub use berth_api_types::{Auth, PullRequest, PushRequest, RefQuery, TagRequest};

fn parse_ref(s: &str) -> Result<Reference, ControlError> {
    s.parse()
        .map_err(|e: berth_oci::ReferenceError| ControlError::bad_request(e.to_string()))
}

fn client_for(
    app: &ControlApp,
    reference: &Reference,
    auth: Option<Auth>,
) -> Result<RegistryClient, ControlError> {
    let client = RegistryClient::new(app.client.clone()).map_err(ControlError::internal)?;
    if let Some(a) = auth {
        client.use_credentials(
            &reference.registry,
            Credentials::new(a.username, a.password),
        );
    }
    Ok(client)
}

pub(crate) fn local(app: &ControlApp) -> LocalBlobs {
    LocalBlobs::new(app.registry.content().clone(), app.registry.state().clone())
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
            .registry
            .state()
            .list_images()
            .map(|v| v.len() as u64)
            .unwrap_or(0),
    })
}

pub(crate) async fn list(State(app): Shared) -> Result<axum::Json<Vec<ImageRecord>>, ControlError> {
    Ok(axum::Json(app.registry.state().list_images()?))
}

pub(crate) async fn pull(
    State(app): Shared,
    axum::Json(req): axum::Json<PullRequest>,
) -> Result<Response, ControlError> {
    let reference = parse_ref(&req.reference)?;
    let platform = match &req.platform {
        Some(p) => p
            .parse::<Platform>()
            .map_err(|e| ControlError::bad_request(e.to_string()))?,
        None => Platform::host(),
    };
    app.policy
        .check(HookEvent::PrePull(image_event(&reference, None)))
        .await?;
    let client = client_for(&app, &reference, req.auth)?;
    Ok(stream(move |progress| {
        Box::pin(async move {
            let done =
                super::pull::pull(app.clone(), client, reference.clone(), platform, progress)
                    .await?;
            let digest = done["manifest"].as_str().map(str::to_string);
            app.policy
                .notify(HookEvent::PostPull(image_event(&reference, digest)));
            Ok(done)
        })
    }))
}

pub(crate) async fn push(
    State(app): Shared,
    axum::Json(req): axum::Json<PushRequest>,
) -> Result<Response, ControlError> {
    let reference = parse_ref(&req.reference)?;
    let image = app
        .registry
        .state()
        .get_image(&reference.to_string())?
        .ok_or_else(|| {
            ControlError::not_found(format!("no local image {reference}; pull or tag one first"))
        })?;
    app.policy
        .check(HookEvent::PrePush(image_event(&reference, None)))
        .await?;
    let client = client_for(&app, &reference, req.auth)?;
    Ok(stream(move |progress| {
        Box::pin(async move {
            let done = do_push(app.clone(), client, reference.clone(), image, progress).await?;
            let digest = done["digest"].as_str().map(str::to_string);
            app.policy
                .notify(HookEvent::PostPush(image_event(&reference, digest)));
            Ok(done)
        })
    }))
}

async fn do_push(
    app: Arc<ControlApp>,
    client: RegistryClient,
    reference: Reference,
    image: ImageRecord,
    progress: Arc<dyn Progress>,
) -> Result<serde_json::Value, ControlError> {
    {
        let source = local(&app);
        // Blobs of an image pulled from another repository of the same
        // registry can be mounted from there rather than sent again.
        let mount_from = image
            .origin
            .as_deref()
            .and_then(|o| o.parse::<Reference>().ok())
            .filter(|o| o.registry == reference.registry && o.repository != reference.repository)
            .map(|o| o.repository);
        let pushed = client
            .push_image(
                &reference,
                &image.manifest,
                &source,
                mount_from.as_deref(),
                progress,
            )
            .await
            .map_err(|e| {
                ControlError::new(StatusCode::BAD_GATEWAY, "push_failed", e.to_string())
            })?;
        let done = berth_api_types::PushResponse {
            reference: reference.to_string(),
            digest: pushed.digest.to_string(),
            size: pushed.size,
        };
        serde_json::to_value(done).map_err(ControlError::internal)
    }
}

pub(crate) async fn tag(
    State(app): Shared,
    axum::Json(req): axum::Json<TagRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let source = parse_ref(&req.source)?;
    let target = parse_ref(&req.target)?;
    let state = app.registry.state();
    let mut image = state
        .get_image(&source.to_string())?
        .ok_or_else(|| ControlError::not_found(format!("no local image {source}")))?;
    image.reference = target.to_string();
    state.put_image(&image)?;
    Ok((StatusCode::CREATED, axum::Json(image)))
}

pub(crate) async fn remove(
    State(app): Shared,
    Query(q): Query<RefQuery>,
) -> Result<impl IntoResponse, ControlError> {
    let reference = parse_ref(&q.reference)?;
    match app.registry.state().remove_image(&reference.to_string())? {
        Some(img) => Ok(axum::Json(img)),
        None => Err(ControlError::not_found(format!(
            "no local image {reference}"
        ))),
    }
}
