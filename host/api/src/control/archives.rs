//! `/v1/images/save`, `/v1/images/load` and `/v1/images/import`: image
//! archives in and out, streamed in both directions.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_image::ArchiveFormat;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::{ControlError, Shared};
use crate::registry::{Query, body_reader};

pub(crate) async fn save(State(app): Shared, req: Request) -> Result<Response, ControlError> {
    let q = Query::parse(req.uri().query());
    let format = match q.get("format").unwrap_or("oci") {
        "oci" => ArchiveFormat::Oci,
        "docker" => ArchiveFormat::Docker,
        other => {
            return Err(ControlError::bad_request(format!(
                "format {other:?}: use oci or docker"
            )));
        }
    };
    let save = app.engine.images().save(&q.all("reference"), format)?;
    let (reader, writer) = tokio::io::duplex(256 * 1024);
    let job = tokio::spawn(save.write_to(writer));
    // A failure mid-way must reach the client as a broken body, never as a
    // short archive that looks complete.
    let tail = futures::stream::once(async move {
        match job.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(std::io::Error::other(e.to_string()))),
            Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
        }
    })
    .filter_map(|x| async move { x });
    let body = ReaderStream::with_capacity(reader, 256 * 1024).chain(tail);
    Ok((
        StatusCode::OK,
        [("content-type", "application/x-tar")],
        Body::from_stream(body),
    )
        .into_response())
}

pub(crate) async fn load(
    State(app): Shared,
    req: Request,
) -> Result<impl IntoResponse, ControlError> {
    let q = Query::parse(req.uri().query());
    let name = q.get("name").map(str::to_string);
    let records = app
        .engine
        .images()
        .load(body_reader(req.into_body()), name.as_deref())
        .await?;
    Ok(axum::Json(records))
}

pub(crate) async fn import(
    State(app): Shared,
    req: Request,
) -> Result<impl IntoResponse, ControlError> {
    let q = Query::parse(req.uri().query());
    let reference = q
        .get("reference")
        .ok_or_else(|| ControlError::bad_request("import needs a NAME[:TAG]"))?
        .to_string();
    let changes = q.all("change");
    let message = q.get("message").map(str::to_string);
    let record = app
        .engine
        .images()
        .import(body_reader(req.into_body()), &reference, &changes, message)
        .await?;
    Ok(axum::Json(record))
}
