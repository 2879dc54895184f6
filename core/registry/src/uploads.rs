//! Blob uploads: monolithic, POST+PUT, chunked PATCH, status, cancel and
//! cross-repository mount.

use berth_oci::{Digest, ErrorCode};
use berth_state::UploadRecord;
use tokio::io::AsyncRead;

use crate::error::{check_repo, parse_digest};
use crate::{IngestSlot, Registry, RegistryError};

/// What a `POST /v2/<name>/blobs/uploads/` led to.
#[derive(Debug, PartialEq)]
pub enum UploadStart {
    /// The blob is in the repository now (monolithic upload or mount): 201.
    Created(Digest),
    /// A session was opened: 202 with its id.
    Session(String),
}

fn unknown_upload(id: &str) -> RegistryError {
    RegistryError::new(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id:?} is unknown; start a new one"),
    )
}

/// A chunk's `Content-Range` (inclusive) must start at the session's
/// offset: chunks come in order, none skipped or repeated. The spec answers
/// anything else with 416.
fn check_chunk(
    offset: u64,
    range: Option<(u64, u64)>,
    content_length: Option<u64>,
) -> Result<(), RegistryError> {
    let Some((start, end)) = range else {
        return Ok(());
    };
    if start != offset || end < start {
        return Err(RegistryError::new(
            ErrorCode::BlobUploadInvalid,
            format!(
                "chunk {start}-{end} does not continue the upload at offset {offset}; send chunks in order"
            ),
        )
        .with_status(416));
    }
    if let Some(len) = content_length
        && len != end - start + 1
    {
        return Err(RegistryError::new(
            ErrorCode::SizeInvalid,
            format!("Content-Range {start}-{end} disagrees with Content-Length {len}"),
        )
        .with_status(416));
    }
    Ok(())
}

impl Registry {
    /// Start an upload. With `mount` = (digest, from) and the blob present in
    /// `from`, the blob is linked without data. With `digest`, `body` is the
    /// whole blob (monolithic). Otherwise a session is opened.
    pub async fn upload_start<R: AsyncRead + Unpin>(
        &self,
        repo: &str,
        digest: Option<&str>,
        mount: Option<(&str, Option<&str>)>,
        body: R,
    ) -> Result<UploadStart, RegistryError> {
        check_repo(repo)?;
        if let Some((md, from)) = mount {
            let d = parse_digest(md)?;
            if let Some(from) = from
                && berth_oci::validate_repository(from).is_ok()
                && self.state.blob_linked(from, &d)?
                && self.content.stat(&d).await?.is_some()
                && self.state.link_blob(repo, &d).is_ok()
            {
                return Ok(UploadStart::Created(d));
            }
            // Not mountable: the spec says fall back to a session.
        } else if let Some(ds) = digest {
            let d = parse_digest(ds)?;
            self.protect(&d).await?;
            self.content.write_blob(&d, None, body).await?;
            self.state.link_blob(repo, &d)?;
            return Ok(UploadStart::Created(d));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.state.put_upload(
            &id,
            &UploadRecord {
                repo: repo.to_string(),
                started: berth_state::now(),
            },
        )?;
        Ok(UploadStart::Session(id))
    }

    /// Repositories holding blob `digest`, in name order: the candidates an
    /// anonymous mount (`?mount=` without `from`) may take it from, once the
    /// caller's right to pull from them is checked. One lookup per
    /// repository name.
    pub fn repositories_with_blob(&self, digest: &str) -> Result<Vec<String>, RegistryError> {
        let d = parse_digest(digest)?;
        let mut holders = Vec::new();
        for repo in self.state.list_repos(None, None)? {
            if self.state.blob_linked(&repo, &d)? {
                holders.push(repo);
            }
        }
        Ok(holders)
    }

    /// The ingest of a session, opened (or reopened after a restart) once.
    async fn slot(&self, repo: &str, id: &str) -> Result<IngestSlot, RegistryError> {
        check_repo(repo)?;
        match self.state.get_upload(id)? {
            Some(rec) if rec.repo == repo => {}
            _ => return Err(unknown_upload(id)),
        }
        let slot = {
            let mut map = self.ingests.lock().map_err(|_| unknown_upload(id))?;
            map.entry(id.to_string()).or_default().clone()
        };
        {
            let mut guard = slot.lock().await;
            if guard.is_none() {
                *guard = Some(self.content.ingest(id).await?);
            }
        }
        Ok(slot)
    }

    /// Bytes received so far by a session.
    pub async fn upload_offset(&self, repo: &str, id: &str) -> Result<u64, RegistryError> {
        let slot = self.slot(repo, id).await?;
        let guard = slot.lock().await;
        Ok(guard.as_ref().map_or(0, |i| i.offset()))
    }

    /// Append a chunk. `range` is the client's `Content-Range` (inclusive);
    /// its start must be the current offset (chunks in order, none skipped).
    /// Returns the new offset.
    pub async fn upload_patch<R: AsyncRead + Unpin>(
        &self,
        repo: &str,
        id: &str,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        body: R,
    ) -> Result<u64, RegistryError> {
        let slot = self.slot(repo, id).await?;
        let mut guard = slot.lock().await;
        let ingest = guard.as_mut().ok_or_else(|| unknown_upload(id))?;
        check_chunk(ingest.offset(), range, content_length)?;
        let written = ingest.append(body).await?;
        if let Some((start, end)) = range
            && written != end - start + 1
        {
            return Err(RegistryError::new(
                ErrorCode::SizeInvalid,
                format!("chunk {start}-{end} carried {written} bytes"),
            ));
        }
        Ok(ingest.offset())
    }

    /// Finish a session: append `body` (may be empty), verify against
    /// `digest` and link the blob. On a digest or size mismatch nothing is
    /// stored and the session is dropped.
    ///
    /// `range` is the final chunk's `Content-Range`, if the client sent one:
    /// it is checked like a PATCH's, before anything is consumed, so an
    /// out-of-order final chunk gets 416 and the session lives on (the
    /// conformance suite recovers from it with a status GET).
    pub async fn upload_finish<R: AsyncRead + Unpin>(
        &self,
        repo: &str,
        id: &str,
        digest: &str,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        body: R,
    ) -> Result<Digest, RegistryError> {
        let d = parse_digest(digest)?;
        let slot = self.slot(repo, id).await?;
        let mut guard = slot.lock().await;
        let offset = guard.as_ref().map_or(0, |i| i.offset());
        check_chunk(offset, range, content_length)?;
        let mut ingest = guard.take().ok_or_else(|| unknown_upload(id))?;
        if let Err(e) = ingest.append(body).await {
            *guard = Some(ingest);
            return Err(e.into());
        }
        if let Err(e) = self.protect(&d).await {
            *guard = Some(ingest);
            return Err(e);
        }
        let result = ingest.commit(&d, None).await;
        // forget_session takes this slot's lock itself.
        drop(guard);
        self.forget_session(id).await;
        result?;
        self.state.link_blob(repo, &d)?;
        Ok(d)
    }

    /// Cancel a session and drop its bytes.
    pub async fn upload_cancel(&self, repo: &str, id: &str) -> Result<(), RegistryError> {
        check_repo(repo)?;
        match self.state.get_upload(id)? {
            Some(rec) if rec.repo == repo => {}
            _ => return Err(unknown_upload(id)),
        }
        self.forget_session(id).await;
        Ok(())
    }

    pub(crate) async fn forget_session(&self, id: &str) {
        let slot = self.ingests.lock().ok().and_then(|mut m| m.remove(id));
        if let Some(slot) = slot {
            drop(slot.lock().await.take());
        }
        if let Err(e) = self.content.remove_ingest(id).await {
            tracing::warn!(upload = id, error = %e, "removing upload data");
        }
        if let Err(e) = self.state.remove_upload(id) {
            tracing::warn!(upload = id, error = %e, "removing upload record");
        }
    }

    /// Number of sessions with an open ingest in memory (for metrics).
    pub fn open_sessions(&self) -> usize {
        self.ingests.lock().map(|m| m.len()).unwrap_or(0)
    }
}
