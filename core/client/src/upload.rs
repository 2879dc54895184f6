//! Blob uploads: monolithic (POST, then one streamed PUT), chunked (POST,
//! PATCH chunks with `Content-Range`, PUT `?digest=`), cross-repository
//! mounts, and resuming a broken chunked upload from the offset the
//! registry reports (GET on the upload URL → `Range: 0-N`).
//!
//! Steps that carry data are never retried blindly: a failed PATCH is
//! followed by a status GET and the chunk is re-sent from where the
//! registry says it stopped; a failed final PUT is checked with a HEAD.

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, RANGE};
use reqwest::{Method, StatusCode, Url};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::ReaderStream;

use berth_oci::Digest;

use crate::auth::Scope;
use crate::error::ClientError;
use crate::transport::{RegistryClient, Repository, Req, ReqBody, resolve_location};

const OCTET_STREAM: &str = "application/octet-stream";

/// An open upload session on a registry.
#[derive(Debug, Clone)]
pub struct UploadSession {
    repo: Repository,
    location: Url,
    offset: u64,
}

impl UploadSession {
    /// The session's URL: keep it to resume with [`RegistryClient::resume_upload`].
    pub fn location(&self) -> &str {
        self.location.as_str()
    }

    /// Bytes the registry has accepted so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }
}

/// The answer to a mount request.
#[derive(Debug)]
pub enum MountOutcome {
    /// The registry linked the blob: nothing to upload.
    Mounted,
    /// It could not; upload into this session instead.
    Upload(UploadSession),
}

impl RegistryClient {
    /// Open an upload session (`POST /v2/<name>/blobs/uploads/`).
    pub async fn start_upload(&self, repo: &Repository) -> Result<UploadSession, ClientError> {
        let op = "starting an upload";
        let url = self.url(&repo.registry, &format!("/v2/{}/blobs/uploads/", repo.name))?;
        let mut req = Req::new(
            Method::POST,
            url.clone(),
            Scope::push(&repo.registry, &repo.name),
            op,
        );
        req.headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let resp = self.send(req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), op)
                .await);
        }
        self.session_from(repo, &url, resp.headers(), op, 0)
    }

    /// Ask the registry to link `digest` from repository `from` into `repo`.
    pub async fn mount_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome, ClientError> {
        let op = format!("mounting blob {digest} from {from}");
        let mut url = self.url(&repo.registry, &format!("/v2/{}/blobs/uploads/", repo.name))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let scope = Scope::mount(&repo.registry, &repo.name, from);
        let mut req = Req::new(Method::POST, url.clone(), scope, &op);
        req.headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let resp = self.send(req).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(self.session_from(
                repo,
                &url,
                resp.headers(),
                &op,
                0,
            )?)),
            _ => Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), &op)
                .await),
        }
    }

    /// Pick up a session from its URL: the registry says how much it holds.
    pub async fn resume_upload(
        &self,
        repo: &Repository,
        location: &str,
    ) -> Result<UploadSession, ClientError> {
        let base = self.url(&repo.registry, "/")?;
        let location = base.join(location).map_err(|e| ClientError::BadResponse {
            registry: repo.registry.clone(),
            operation: "resuming an upload".into(),
            detail: format!("{location:?} is not a URL: {e}"),
        })?;
        let mut session = UploadSession {
            repo: repo.clone(),
            location,
            offset: 0,
        };
        self.refresh_upload(&mut session).await?;
        Ok(session)
    }

    /// Ask the registry how far `session` has got; updates its offset and URL.
    pub async fn refresh_upload(&self, session: &mut UploadSession) -> Result<(), ClientError> {
        let op = "checking an upload's progress";
        let repo = session.repo.clone();
        let req = Req::new(
            Method::GET,
            session.location.clone(),
            Scope::push(&repo.registry, &repo.name),
            op,
        );
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), op)
                .await);
        }
        let offset = range_end(resp.headers()).unwrap_or(0);
        *session = self
            .session_from(&repo, &session.location.clone(), resp.headers(), op, offset)
            .unwrap_or(UploadSession {
                offset,
                ..session.clone()
            });
        Ok(())
    }

    /// PATCH one chunk. If it fails, ask the registry where it stands and
    /// send the rest of the chunk from there, a bounded number of times.
    pub async fn upload_chunk(
        &self,
        session: &mut UploadSession,
        chunk: Bytes,
    ) -> Result<(), ClientError> {
        let start = session.offset;
        let end = start + chunk.len() as u64;
        let max = self.config.retry.max_attempts;
        let mut failures = 0;
        while session.offset < end {
            let part = chunk.slice((session.offset - start) as usize..);
            let err = match self.patch_once(session, part).await {
                Ok(()) => continue,
                Err(e) => e,
            };
            failures += 1;
            if failures >= max || !worth_resuming(&err) {
                return Err(err);
            }
            let wait = self.config.retry.backoff(failures);
            tracing::warn!(upload = %session.location, error = %err, ?wait, "chunk failed, asking the registry where to resume");
            tokio::time::sleep(wait).await;
            self.refresh_upload(session).await?;
            if session.offset < start || session.offset > end {
                return Err(ClientError::BadResponse {
                    registry: session.repo.registry.clone(),
                    operation: "resuming a chunk".into(),
                    detail: format!(
                        "the registry holds {} bytes, outside the chunk {start}..{end} that was being sent",
                        session.offset
                    ),
                });
            }
        }
        Ok(())
    }

    async fn patch_once(
        &self,
        session: &mut UploadSession,
        part: Bytes,
    ) -> Result<(), ClientError> {
        let op = "uploading a chunk";
        let repo = session.repo.clone();
        let len = part.len() as u64;
        let mut req = Req::new(
            Method::PATCH,
            session.location.clone(),
            Scope::push(&repo.registry, &repo.name),
            op,
        );
        req.idempotent = false;
        req.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        req.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        if let Ok(v) =
            HeaderValue::from_str(&format!("{}-{}", session.offset, session.offset + len - 1))
        {
            req.headers.insert(CONTENT_RANGE, v);
        }
        req.body = ReqBody::Bytes(part);
        let resp = self.send(req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), op)
                .await);
        }
        let expected = session.offset + len;
        // Trust the registry's count over ours: it is what a resume needs.
        let offset = range_end(resp.headers()).unwrap_or(expected);
        *session =
            self.session_from(&repo, &session.location.clone(), resp.headers(), op, offset)?;
        Ok(())
    }

    /// Close the session: `PUT <location>?digest=…` with no body.
    pub async fn finish_upload(
        &self,
        session: UploadSession,
        digest: &Digest,
    ) -> Result<(), ClientError> {
        let mut url = session.location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut req = Req::new(
            Method::PUT,
            url,
            Scope::push(&session.repo.registry, &session.repo.name),
            format!("completing the upload of {digest}"),
        );
        req.idempotent = false;
        req.headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        self.put_upload(&session.repo, digest, req).await
    }

    /// Upload a blob of known size with one streamed PUT after the POST.
    pub async fn upload_monolithic<R>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        reader: R,
    ) -> Result<(), ClientError>
    where
        R: AsyncRead + Send + 'static,
    {
        let session = self.start_upload(repo).await?;
        self.put_whole(session, digest, size, reader).await
    }

    /// Send a whole blob into `session` with one streamed PUT.
    pub async fn put_whole<R>(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        reader: R,
    ) -> Result<(), ClientError>
    where
        R: AsyncRead + Send + 'static,
    {
        let repo = &session.repo;
        let mut url = session.location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut req = Req::new(
            Method::PUT,
            url,
            Scope::push(&repo.registry, &repo.name),
            format!("uploading blob {digest}"),
        );
        req.idempotent = false;
        req.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        req.headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
        req.body = ReqBody::Once(Some(reqwest::Body::wrap_stream(ReaderStream::new(reader))));
        self.put_upload(repo, digest, req).await
    }

    /// Upload a blob in chunks of `config.chunk_size` through a new session.
    pub async fn upload_chunked<R>(
        &self,
        repo: &Repository,
        digest: &Digest,
        reader: R,
    ) -> Result<(), ClientError>
    where
        R: AsyncRead + Unpin,
    {
        let session = self.start_upload(repo).await?;
        self.continue_upload(session, digest, reader).await
    }

    /// Send what `reader` yields into `session` from its current offset, in
    /// chunks, then complete the upload. `reader` must start at the
    /// session's offset (after a resume, skip what the registry holds).
    pub async fn continue_upload<R>(
        &self,
        mut session: UploadSession,
        digest: &Digest,
        mut reader: R,
    ) -> Result<(), ClientError>
    where
        R: AsyncRead + Unpin,
    {
        let chunk_size = self.config.chunk_size.max(1);
        loop {
            let mut buf = BytesMut::with_capacity(chunk_size);
            while buf.len() < chunk_size {
                let n = (&mut reader)
                    .take((chunk_size - buf.len()) as u64)
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| ClientError::Source {
                        digest: digest.clone(),
                        source: Box::new(e),
                    })?;
                if n == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                break;
            }
            let last = buf.len() < chunk_size;
            self.upload_chunk(&mut session, buf.freeze()).await?;
            if last {
                break;
            }
        }
        self.finish_upload(session, digest).await
    }

    /// Send a completing PUT; if its answer is lost, ask with a HEAD
    /// whether the blob arrived before calling it a failure.
    async fn put_upload(
        &self,
        repo: &Repository,
        digest: &Digest,
        req: Req,
    ) -> Result<(), ClientError> {
        let op = req.operation.clone();
        let err = match self.send(req).await {
            Ok(resp) if resp.status() == StatusCode::CREATED => return Ok(()),
            Ok(resp) => {
                self.error_from(resp, &repo.registry, Some(&repo.name), &op)
                    .await
            }
            Err(e) => e,
        };
        let transient =
            matches!(err, ClientError::Http { .. }) || err.status().is_some_and(|s| s >= 500);
        if transient && let Ok(Some(_)) = self.blob_exists(repo, digest).await {
            tracing::info!(%digest, "upload answer was lost but the blob arrived");
            return Ok(());
        }
        Err(err)
    }

    fn session_from(
        &self,
        repo: &Repository,
        base: &Url,
        headers: &HeaderMap,
        op: &str,
        offset: u64,
    ) -> Result<UploadSession, ClientError> {
        Ok(UploadSession {
            repo: repo.clone(),
            location: resolve_location(base, headers, &repo.registry, op)?,
            offset,
        })
    }
}

/// The offset after `Range: 0-N` (also `bytes=0-N`): N + 1. Distribution
/// sends `0-0` for an empty session, so that reads as 0.
fn range_end(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(RANGE)?.to_str().ok()?.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (start, end) = v.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    if start != 0 {
        return None;
    }
    Some(if end == 0 { 0 } else { end + 1 })
}

/// Failures after which the registry may still hold a usable session.
fn worth_resuming(e: &ClientError) -> bool {
    match e {
        ClientError::Http { .. } | ClientError::Unauthorized { .. } => true,
        _ => e
            .status()
            .is_some_and(|s| s >= 500 || s == 429 || s == 408 || s == 416),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;

    #[test]
    fn reads_range_headers() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(RANGE, v.parse().unwrap());
            range_end(&m)
        };
        assert_eq!(h("0-1023"), Some(1024));
        assert_eq!(h("bytes=0-9"), Some(10));
        assert_eq!(h("0-0"), Some(0));
        assert_eq!(h("5-9"), None);
        assert_eq!(h("junk"), None);
        assert_eq!(range_end(&HeaderMap::new()), None);
    }
}
