//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_oci::ErrorCode;
use tokio_util::io::ReaderStream;

use super::{ApiError, RegistryApp};

/// `bytes=START-END` or `bytes=START-`; `None` when absent.
pub(crate) fn parse_range(h: Option<&str>) -> Result<Option<(u64, Option<u64>)>, ApiError> {
    let Some(v) = h else { return Ok(None) };
    let bad = || {
        ApiError::client(
            ErrorCode::BlobUnknown,
            format!("Range {v:?} is not bytes=START-END"),
        )
        .with_416()
    };
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (s, e) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = s.trim().parse().map_err(|_| bad())?;
    let end = if e.trim().is_empty() {
        None
    } else {
        Some(e.trim().parse::<u64>().map_err(|_| bad())?)
    };
    Ok(Some((start, end)))
}

impl ApiError {
    fn with_416(self) -> ApiError {
        match self {
            ApiError::Registry(e) => ApiError::Registry(e.with_status(416)),
            other => other,
        }
    }
}

pub(crate) async fn handle(
    app: &RegistryApp,
    repo: &str,
    digest: &str,
    method: Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    match method {
        Method::HEAD => {
            let (d, size) = app.registry.blob_size(repo, digest).await?;
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_LENGTH, size.to_string()),
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::ACCEPT_RANGES, "bytes".to_string()),
                    (
                        header::HeaderName::from_static("docker-content-digest"),
                        d.to_string(),
                    ),
                ],
            )
                .into_response())
        }
        Method::GET => {
            let range = parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()))?;
            let blob = app.registry.blob_read(repo, digest, range).await?;
            let body = Body::from_stream(ReaderStream::with_capacity(blob.body, 256 * 1024));
            let digest_h = (
                header::HeaderName::from_static("docker-content-digest"),
                blob.digest.to_string(),
            );
            let resp = match blob.range {
                None => (
                    StatusCode::OK,
                    [
                        (header::CONTENT_LENGTH, blob.size.to_string()),
                        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                        (header::ACCEPT_RANGES, "bytes".to_string()),
                        digest_h,
                    ],
                    body,
                )
                    .into_response(),
                Some((start, end)) => (
                    StatusCode::PARTIAL_CONTENT,
                    [
                        (header::CONTENT_LENGTH, (end - start + 1).to_string()),
                        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                        (
                            header::CONTENT_RANGE,
                            format!("bytes {start}-{end}/{}", blob.size),
                        ),
                        digest_h,
                    ],
                    body,
                )
                    .into_response(),
            };
            Ok(resp)
        }
        Method::DELETE => {
            app.registry.blob_delete(repo, digest).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        m => Err(ApiError::unsupported(&m)),
    }
}
