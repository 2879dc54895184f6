//! `/v1/images/save`, `/v1/images/load` and `/v1/images/import`: image
//! archives in and out, streamed in both directions.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_image::{ArchiveFormat, ImportOptions, LoadedImage};
use berth_oci::{Descriptor, Reference, media_types};
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::store::{self, NewImage};
use super::{ControlApp, ControlError, Shared};
use crate::registry::{Query, body_reader};

fn parse_ref(s: &str) -> Result<Reference, ControlError> {
    s.parse()
        .map_err(|e: berth_oci::ReferenceError| ControlError::bad_request(e.to_string()))
}

fn archive_err(e: berth_image::ImageError) -> ControlError {
    ControlError::bad_request(e.to_string())
}

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
    let mut images = Vec::new();
    for r in q.all("reference") {
        let img = super::inspect::image(&app, &r)?;
        images.push((parse_ref(&img.reference)?, img.manifest));
    }
    if images.is_empty() {
        return Err(ControlError::bad_request("name at least one image to save"));
    }
    let (reader, writer) = tokio::io::duplex(256 * 1024);
    let content = app.registry.content().clone();
    let job = tokio::spawn(async move {
        berth_image::save(&content, &images, format, writer)
            .await
            .map(|_| ())
    });
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

/// Record what an archive brought, naming unnamed images `name`.
async fn record_loaded(
    app: &ControlApp,
    loaded: Vec<LoadedImage>,
    name: Option<&str>,
) -> Result<Vec<serde_json::Value>, ControlError> {
    let unnamed = loaded.iter().filter(|l| l.reference.is_none()).count();
    if unnamed > 1 && name.is_some() {
        return Err(ControlError::bad_request(
            "the archive holds several unnamed images; --name can name only one",
        ));
    }
    let mut out = Vec::new();
    for l in loaded {
        let reference = match (&l.reference, name) {
            (Some(r), _) => r.clone(),
            (None, Some(n)) => parse_ref(n)?.to_string(),
            (None, None) => {
                return Err(ControlError::bad_request(format!(
                    "the archive does not name image {} (its name is {:?}); give one with --name NAME:TAG",
                    l.manifest, l.ref_name
                )));
            }
        };
        let config = Descriptor {
            media_type: if l.media_type == media_types::DOCKER_MANIFEST {
                media_types::DOCKER_CONFIG.to_string()
            } else {
                media_types::OCI_CONFIG.to_string()
            },
            digest: l.config.clone(),
            size: app
                .registry
                .content()
                .stat(&l.config)
                .await
                .ok()
                .flatten()
                .unwrap_or(0),
            artifact_type: None,
            annotations: None,
            platform: None,
            urls: None,
        };
        let record = store::record(
            app,
            NewImage {
                reference,
                digest: l.manifest.clone(),
                media_type: l.media_type.clone(),
                platform_manifest: None,
                config,
                layers: l.layers.clone(),
                origin: None,
            },
        )
        .await?;
        out.push(serde_json::to_value(&record).map_err(ControlError::internal)?);
    }
    Ok(out)
}

pub(crate) async fn load(
    State(app): Shared,
    req: Request,
) -> Result<impl IntoResponse, ControlError> {
    let q = Query::parse(req.uri().query());
    let name = q.get("name").map(str::to_string);
    let loaded = berth_image::load(body_reader(req.into_body()), app.registry.content())
        .await
        .map_err(archive_err)?;
    Ok(axum::Json(
        record_loaded(&app, loaded, name.as_deref()).await?,
    ))
}

pub(crate) async fn import(
    State(app): Shared,
    req: Request,
) -> Result<impl IntoResponse, ControlError> {
    let q = Query::parse(req.uri().query());
    let reference = parse_ref(
        q.get("reference")
            .ok_or_else(|| ControlError::bad_request("import needs a NAME[:TAG]"))?,
    )?;
    let mut options = ImportOptions::default();
    for change in q.all("change") {
        berth_image::apply_change(&mut options.config, &change).map_err(archive_err)?;
    }
    if let Some(m) = q.get("message") {
        options.message = Some(m.to_string());
    }
    let loaded = berth_image::import(
        body_reader(req.into_body()),
        app.registry.content(),
        Some(&reference),
        options,
    )
    .await
    .map_err(archive_err)?;
    let mut records = record_loaded(&app, vec![loaded], Some(&reference.to_string())).await?;
    Ok(axum::Json(records.pop().unwrap_or_default()))
}
