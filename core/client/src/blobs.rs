//! Blob reads: HEAD, streamed GET verified against the digest while the
//! bytes pass through, and Range GET.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::TryStreamExt;
use reqwest::header::{CONTENT_LENGTH, HeaderValue, RANGE};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::io::StreamReader;

use berth_oci::{Digest, Hasher};

use crate::auth::Scope;
use crate::error::ClientError;
use crate::transport::{RegistryClient, Repository, Req};

/// What a HEAD on a blob tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
}

/// How a download turned out not to be what was asked for.
#[derive(Debug, Clone)]
pub(crate) enum Mismatch {
    Digest(Digest),
    Size(u64),
    /// The registry's stream broke off: worth another try.
    Interrupted(String),
}

/// Shared slot where a [`VerifyingReader`] leaves its verdict, so the
/// caller can tell a digest mismatch from the sink's own I/O errors.
pub(crate) type Verdict = Arc<Mutex<Option<Mismatch>>>;

/// Hashes and counts what passes through; at end of stream, fails the read
/// with `InvalidData` if digest or size differ, so a sink that propagates
/// read errors never commits unverified content.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: Option<u64>,
    seen: u64,
    verdict: Verdict,
}

impl<R> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> (Self, Verdict) {
        let verdict = Verdict::default();
        let r = VerifyingReader {
            inner,
            hasher: Some(expected.algorithm().hasher()),
            expected,
            expected_size,
            seen: 0,
            verdict: verdict.clone(),
        };
        (r, verdict)
    }

    fn fail(&self, m: Mismatch) -> io::Error {
        let msg = match &m {
            Mismatch::Digest(actual) => format!("expected {}, got {actual}", self.expected),
            Mismatch::Size(n) => format!("{}: unexpected size {n}", self.expected),
            Mismatch::Interrupted(e) => format!("{}: download interrupted: {e}", self.expected),
        };
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(m);
        }
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for VerifyingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => {
                return Poll::Ready(Err(this.fail(Mismatch::Interrupted(e.to_string()))));
            }
            Poll::Pending => return Poll::Pending,
        }
        let new = &buf.filled()[before..];
        if new.is_empty() {
            // End of stream: the one place the whole content can be judged.
            let Some(h) = this.hasher.take() else {
                return Poll::Ready(Ok(()));
            };
            if let Some(want) = this.expected_size
                && want != this.seen
            {
                return Poll::Ready(Err(this.fail(Mismatch::Size(this.seen))));
            }
            let actual = h.finish();
            if actual != this.expected {
                return Poll::Ready(Err(this.fail(Mismatch::Digest(actual))));
            }
            return Poll::Ready(Ok(()));
        }
        this.seen += new.len() as u64;
        if let Some(h) = this.hasher.as_mut() {
            h.update(new);
        }
        if let Some(want) = this.expected_size
            && this.seen > want
        {
            // Stop a registry that sends more than announced right away;
            // the bytes of this read are withdrawn with the error.
            let seen = this.seen;
            buf.set_filled(before);
            return Poll::Ready(Err(this.fail(Mismatch::Size(seen))));
        }
        Poll::Ready(Ok(()))
    }
}

pub(crate) type ResponseReader = Box<dyn AsyncRead + Send + Unpin>;

impl RegistryClient {
    /// HEAD a blob: `None` if the registry does not have it.
    pub async fn blob_exists(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<BlobInfo>, ClientError> {
        let op = format!("checking blob {digest}");
        let url = self.url(&repo.registry, &format!("/v2/{}/blobs/{digest}", repo.name))?;
        let scope = Scope::pull(&repo.registry, &repo.name);
        let resp = self.send(Req::new(Method::HEAD, url, scope, &op)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let size = resp
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| ClientError::BadResponse {
                        registry: repo.registry.clone(),
                        operation: op.clone(),
                        detail: "HEAD answer lacks Content-Length".into(),
                    })?;
                Ok(Some(BlobInfo { size }))
            }
            _ => Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), &op)
                .await),
        }
    }

    /// GET a blob as a stream that verifies itself (see [`VerifyingReader`]).
    pub(crate) async fn open_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<(VerifyingReader<ResponseReader>, Verdict), ClientError> {
        let resp = self.blob_get(repo, digest, None).await?;
        if resp.status() != StatusCode::OK {
            return Err(ClientError::BadResponse {
                registry: repo.registry.clone(),
                operation: format!("fetching blob {digest}"),
                detail: format!("expected 200, got {}", resp.status()),
            });
        }
        let stream = resp.bytes_stream().map_err(io::Error::other);
        let reader: ResponseReader = Box::new(StreamReader::new(Box::pin(stream)));
        Ok(VerifyingReader::new(reader, digest.clone(), expected_size))
    }

    /// Stream a blob into `out`, verifying digest (and size, if given) as it
    /// goes. On a mismatch the error is [`ClientError::DigestMismatch`] or
    /// [`ClientError::SizeMismatch`] and what was written must be discarded.
    /// Returns the number of bytes written.
    pub async fn get_blob<W: AsyncWrite + Unpin>(
        &self,
        repo: &Repository,
        digest: &Digest,
        expected_size: Option<u64>,
        out: &mut W,
    ) -> Result<u64, ClientError> {
        let (mut reader, verdict) = self.open_blob(repo, digest, expected_size).await?;
        let copied = tokio::io::copy(&mut reader, out).await;
        let flushed = match copied {
            Ok(n) => out.flush().await.map(|_| n),
            Err(e) => Err(e),
        };
        flushed.map_err(|e| self.download_error(repo, digest, expected_size, &verdict, e))
    }

    /// Stream bytes `range` (end exclusive) of a blob into `out`. A part of a
    /// blob cannot be checked against its digest; the caller verifies the
    /// whole once assembled.
    pub async fn get_blob_range<W: AsyncWrite + Unpin>(
        &self,
        repo: &Repository,
        digest: &Digest,
        range: std::ops::Range<u64>,
        out: &mut W,
    ) -> Result<u64, ClientError> {
        let op = format!("fetching part of blob {digest}");
        let want = range.end.saturating_sub(range.start);
        if want == 0 {
            return Ok(0);
        }
        let resp = self.blob_get(repo, digest, Some(range.clone())).await?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(ClientError::BadResponse {
                registry: repo.registry.clone(),
                operation: op,
                detail: format!(
                    "asked for bytes {}-{} and got {} instead of 206: the registry does not serve ranges",
                    range.start,
                    range.end - 1,
                    resp.status()
                ),
            });
        }
        let stream = resp.bytes_stream().map_err(io::Error::other);
        let mut reader = StreamReader::new(Box::pin(stream));
        let write_err = |source| ClientError::Write {
            digest: digest.clone(),
            source,
        };
        let n = tokio::io::copy(&mut reader, out).await.map_err(write_err)?;
        out.flush().await.map_err(write_err)?;
        if n != want {
            return Err(ClientError::BadResponse {
                registry: repo.registry.clone(),
                operation: op,
                detail: format!("asked for {want} bytes, got {n}"),
            });
        }
        Ok(n)
    }

    async fn blob_get(
        &self,
        repo: &Repository,
        digest: &Digest,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<reqwest::Response, ClientError> {
        let op = format!("fetching blob {digest}");
        let url = self.url(&repo.registry, &format!("/v2/{}/blobs/{digest}", repo.name))?;
        let mut req = Req::new(
            Method::GET,
            url,
            Scope::pull(&repo.registry, &repo.name),
            &op,
        );
        if let Some(r) = range {
            let v = format!("bytes={}-{}", r.start, r.end.saturating_sub(1));
            if let Ok(v) = HeaderValue::from_str(&v) {
                req.headers.insert(RANGE, v);
            }
        }
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), &op)
                .await);
        }
        Ok(resp)
    }

    /// Name a failed download: a recorded mismatch wins over the I/O error
    /// it caused.
    pub(crate) fn download_error(
        &self,
        repo: &Repository,
        digest: &Digest,
        expected_size: Option<u64>,
        verdict: &Verdict,
        e: io::Error,
    ) -> ClientError {
        let recorded = verdict.lock().ok().and_then(|v| v.clone());
        match recorded {
            Some(Mismatch::Digest(actual)) => ClientError::DigestMismatch {
                registry: repo.registry.clone(),
                repository: repo.name.clone(),
                what: "blob",
                digest: digest.clone(),
                actual,
            },
            Some(Mismatch::Size(actual)) => ClientError::SizeMismatch {
                registry: repo.registry.clone(),
                repository: repo.name.clone(),
                digest: digest.clone(),
                expected: expected_size.unwrap_or_default(),
                actual,
            },
            Some(Mismatch::Interrupted(detail)) => ClientError::BadResponse {
                registry: repo.registry.clone(),
                operation: format!("fetching blob {digest}"),
                detail: format!("the download broke off: {detail}"),
            },
            None => ClientError::Write {
                digest: digest.clone(),
                source: e,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn run(
        data: &[u8],
        digest: Digest,
        size: Option<u64>,
    ) -> (io::Result<Vec<u8>>, Option<Mismatch>) {
        let (mut r, verdict) = VerifyingReader::new(data, digest, size);
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).await.map(|_| out);
        let v = verdict.lock().unwrap().clone();
        (res, v)
    }

    #[tokio::test]
    async fn passes_matching_content() {
        let d = Digest::sha256_of(b"hello");
        let (res, v) = run(b"hello", d, Some(5)).await;
        assert_eq!(res.unwrap(), b"hello");
        assert!(v.is_none());
    }

    #[tokio::test]
    async fn fails_at_end_on_wrong_digest_or_size() {
        let d = Digest::sha256_of(b"hello");
        let (res, v) = run(b"jello", d.clone(), None).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(matches!(v, Some(Mismatch::Digest(a)) if a == Digest::sha256_of(b"jello")));
        let (res, v) = run(b"hell", d.clone(), Some(5)).await;
        assert!(res.is_err());
        assert!(matches!(v, Some(Mismatch::Size(4))));
        let (res, v) = run(b"hello!!", d, Some(5)).await;
        assert!(res.is_err());
        assert!(matches!(v, Some(Mismatch::Size(n)) if n > 5));
    }
}
