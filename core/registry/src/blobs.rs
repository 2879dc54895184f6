//! Blob reads, HEADs and deletes, scoped to a repository.

use berth_oci::{Digest, ErrorCode};
use tokio::io::AsyncRead;

use crate::error::{check_repo, parse_digest};
use crate::{Registry, RegistryError};

/// A blob (or a range of one) ready to stream.
pub struct BlobRead {
    pub digest: Digest,
    /// Size of the whole blob.
    pub size: u64,
    /// `Some((start, end))` when a range was served (inclusive).
    pub range: Option<(u64, u64)>,
    pub body: Box<dyn AsyncRead + Send + Unpin>,
}

fn unknown(repo: &str, d: &Digest) -> RegistryError {
    RegistryError::new(
        ErrorCode::BlobUnknown,
        format!("blob {d} is unknown to repository {repo}"),
    )
    .with_detail(serde_json::json!({ "digest": d.to_string() }))
}

impl Registry {
    /// The size of a blob the repository holds. Marks it used, so a client
    /// that checks before pushing a manifest doesn't lose it to GC.
    pub async fn blob_size(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<(Digest, u64), RegistryError> {
        check_repo(repo)?;
        let d = parse_digest(digest)?;
        if !self.state.blob_linked(repo, &d)? {
            return Err(unknown(repo, &d));
        }
        if self.state.touch_blob(&d).is_err() {
            return Err(unknown(repo, &d));
        }
        match self.content.stat(&d).await? {
            Some(size) => Ok((d, size)),
            None => Err(unknown(repo, &d)),
        }
    }

    /// Open a blob, or the inclusive range `start..=end` of it (`end` None
    /// means to the end).
    pub async fn blob_read(
        &self,
        repo: &str,
        digest: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<BlobRead, RegistryError> {
        let (d, size) = self.blob_size(repo, digest).await?;
        match range {
            None => {
                let (f, size) = self.content.open_blob(&d).await?;
                Ok(BlobRead {
                    digest: d,
                    size,
                    range: None,
                    body: Box::new(f),
                })
            }
            Some((start, end)) => {
                let end = end
                    .unwrap_or(size.saturating_sub(1))
                    .min(size.saturating_sub(1));
                if size == 0 || start > end {
                    return Err(RegistryError::new(
                        ErrorCode::BlobUnknown,
                        format!("range starting at {start} is outside blob {d} of {size} bytes"),
                    )
                    .with_status(416));
                }
                let body = self.content.read_range(&d, start, end).await?;
                Ok(BlobRead {
                    digest: d,
                    size,
                    range: Some((start, end)),
                    body: Box::new(body),
                })
            }
        }
    }

    /// Remove a blob from a repository. The bytes go when GC finds nothing
    /// else holding them.
    pub async fn blob_delete(&self, repo: &str, digest: &str) -> Result<(), RegistryError> {
        check_repo(repo)?;
        let d = parse_digest(digest)?;
        if !self.state.unlink_blob(repo, &d)? {
            return Err(unknown(repo, &d));
        }
        Ok(())
    }

    /// Reserve `d` against GC before its bytes are written, waiting out a
    /// collection of the same digest that is already under way.
    pub(crate) async fn protect(&self, d: &Digest) -> Result<(), RegistryError> {
        for _ in 0..50 {
            match self.state.touch_blob(d) {
                Ok(()) => return Ok(()),
                Err(berth_state::StateError::BlobDeleting(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::new(
            ErrorCode::TooManyRequests,
            format!("blob {d} is being garbage collected; retry shortly"),
        ))
    }
}
