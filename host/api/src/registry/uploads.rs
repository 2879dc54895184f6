//! Blob uploads: `POST /v2/<name>/blobs/uploads/` and
//! `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<id>`.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_auth::{Action, Principal};
use berth_oci::ErrorCode;
use berth_registry::UploadStart;

use super::{ApiError, Query, RegistryApp, blocking, body_reader};

fn blob_created(repo: &str, digest: &berth_oci::Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{repo}/blobs/{digest}")),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}

/// 202 (or 204 for status) with the session's location and received range.
///
/// - `Location` is an absolute path, not a URL: it stays right behind a
///   proxy that rewrites the host, and every client resolves it against the
///   request URL.
/// - An empty session reports `Range: 0-0`, as Distribution does; clients
///   and the conformance suite only parse the end after `0-`.
/// - No `OCI-Chunk-Min-Length`: PATCH accepts chunks of any size, and the
///   spec makes the header optional for exactly that case.
fn session(status: StatusCode, repo: &str, id: &str, offset: u64) -> Response {
    (
        status,
        [
            (header::LOCATION, format!("/v2/{repo}/blobs/uploads/{id}")),
            (header::RANGE, format!("0-{}", offset.saturating_sub(1))),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                id.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Content-Range: START-END` (Distribution's form) or `bytes START-END/*`.
fn content_range(h: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = h.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::Registry(
            berth_registry::RegistryError::new(
                ErrorCode::BlobUploadInvalid,
                format!("Content-Range {v:?} is not START-END"),
            )
            .with_status(416),
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    Ok(Some((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    )))
}

/// Where an anonymous mount (`?mount=` without `from`, which the spec lets
/// a registry honour) takes its blob from: the first repository holding it
/// that the caller may pull from. None leaves the mount to fall back to an
/// upload session, as for a blob the caller cannot reach. Each holder may
/// cost an auth plugin's call: on the blocking pool.
async fn anonymous_mount_source(
    app: &RegistryApp,
    principal: &Principal,
    digest: &str,
) -> Result<Option<String>, ApiError> {
    let (registry, auth) = (app.registry.clone(), app.auth.clone());
    let (principal, digest) = (principal.clone(), digest.to_string());
    blocking(move || {
        Ok(registry
            .repositories_with_blob(&digest)?
            .into_iter()
            .find(|holder| auth.allows(&principal, Action::Pull, holder)))
    })
    .await
}

/// A chunk out of order (416) leaves the session as it was. The answer
/// says where it stands, with `Location` and `Range` as in the spec's
/// example, so a client can go on without asking for the status first.
async fn with_session_state(
    app: &RegistryApp,
    repo: &str,
    id: &str,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let Err(ApiError::Registry(e)) = result else {
        return result;
    };
    if e.status() != 416 {
        return Err(ApiError::Registry(e));
    }
    let offset = app.registry.upload_offset(repo, id).await;
    let mut resp = ApiError::Registry(e).into_response();
    if let Ok(offset) = offset {
        let state = session(StatusCode::NO_CONTENT, repo, id, offset);
        for name in [header::LOCATION, header::RANGE] {
            if let Some(v) = state.headers().get(&name) {
                resp.headers_mut().insert(name, v.clone());
            }
        }
    }
    Ok(resp)
}

pub(crate) async fn start(
    app: &RegistryApp,
    principal: &Principal,
    repo: &str,
    query: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    let from = match (query.get("mount"), query.get("from")) {
        (Some(digest), None) => anonymous_mount_source(app, principal, digest).await?,
        (_, from) => from.map(str::to_string),
    };
    let mount = query.get("mount").map(|m| (m, from.as_deref()));
    let digest = query.get("digest");
    let result = app
        .registry
        .upload_start(repo, digest, mount, body_reader(req.into_body()))
        .await?;
    Ok(match result {
        UploadStart::Created(d) => blob_created(repo, &d),
        UploadStart::Session(id) => session(StatusCode::ACCEPTED, repo, &id, 0),
    })
}

pub(crate) async fn handle(
    app: &RegistryApp,
    repo: &str,
    id: &str,
    method: Method,
    query: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    match method {
        // HEAD is not in the spec's table for sessions; answering it like
        // GET costs nothing and spares clients that probe with HEAD a 405.
        Method::GET | Method::HEAD => {
            let offset = app.registry.upload_offset(repo, id).await?;
            Ok(session(StatusCode::NO_CONTENT, repo, id, offset))
        }
        Method::PATCH => {
            let result = async {
                let range = content_range(req.headers())?;
                let len = content_length(req.headers());
                let offset = app
                    .registry
                    .upload_patch(repo, id, range, len, body_reader(req.into_body()))
                    .await?;
                Ok(session(StatusCode::ACCEPTED, repo, id, offset))
            }
            .await;
            with_session_state(app, repo, id, result).await
        }
        Method::PUT => {
            let digest = query.get("digest").ok_or_else(|| {
                ApiError::client(
                    ErrorCode::DigestInvalid,
                    "PUT that completes an upload needs ?digest=",
                )
            })?;
            let result = async {
                let range = content_range(req.headers())?;
                let len = content_length(req.headers());
                let d = app
                    .registry
                    .upload_finish(repo, id, digest, range, len, body_reader(req.into_body()))
                    .await?;
                Ok(blob_created(repo, &d))
            }
            .await;
            with_session_state(app, repo, id, result).await
        }
        Method::DELETE => {
            app.registry.upload_cancel(repo, id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        m => Err(ApiError::unsupported(&m)),
    }
}
