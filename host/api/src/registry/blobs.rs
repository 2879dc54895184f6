//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::{ApiError, RegistryApp};

/// What a `Range` header asks of a blob.
#[derive(Debug, PartialEq)]
pub(crate) enum ByteRange {
    /// `bytes=START-` or `bytes=START-END` (inclusive).
    From(u64, Option<u64>),
    /// `bytes=-N`: the last N bytes.
    Suffix(u64),
}

/// Parse `Range`. Anything but a single byte range (another unit, several
/// ranges, garbage) is ignored and the whole blob served, as RFC 9110 §14.2
/// allows: the client still gets correct bytes, with a 200 that says so.
pub(crate) fn parse_range(h: Option<&str>) -> Option<ByteRange> {
    let spec = h?.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (s, e) = spec.split_once('-')?;
    let (s, e) = (s.trim(), e.trim());
    if s.is_empty() {
        return e.parse().ok().map(ByteRange::Suffix);
    }
    let start = s.parse().ok()?;
    let end = if e.is_empty() {
        None
    } else {
        Some(e.parse().ok()?)
    };
    Some(ByteRange::From(start, end))
}

/// A 416 carries `Content-Range: bytes */SIZE` (RFC 9110 §15.5.17) so the
/// client learns how long the blob really is.
fn unsatisfiable(e: ApiError, size: u64) -> Response {
    let mut resp = e.into_response();
    if let Ok(v) = format!("bytes */{size}").parse() {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
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
            let range = match parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()))
            {
                None => None,
                Some(ByteRange::From(start, end)) => Some((start, end)),
                Some(ByteRange::Suffix(n)) => {
                    let (_, size) = app.registry.blob_size(repo, digest).await?;
                    // `bytes=-0` asks for nothing: start past the end so the
                    // registry answers 416.
                    let start = if n == 0 { size } else { size.saturating_sub(n) };
                    Some((start, None))
                }
            };
            let blob = match app.registry.blob_read(repo, digest, range).await {
                Ok(b) => b,
                Err(e) if e.status() == 416 => {
                    let (_, size) = app.registry.blob_size(repo, digest).await?;
                    return Ok(unsatisfiable(e.into(), size));
                }
                Err(e) => return Err(e.into()),
            };
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
