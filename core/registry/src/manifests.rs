//! Manifests: stored byte for byte, checked for the blobs and manifests
//! they reference, indexed by tag and by subject.

use berth_oci::{Descriptor, Digest, ErrorCode, ManifestSummary};
use berth_state::ManifestRecord;

use crate::error::check_repo;
use crate::{Registry, RegistryError};

/// A manifest to serve.
pub struct ManifestGet {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The bytes, exactly as pushed (empty for HEAD).
    pub body: Vec<u8>,
}

/// The outcome of a manifest PUT.
#[derive(Debug)]
pub struct ManifestPut {
    pub digest: Digest,
    /// Set when the manifest has a subject: the `OCI-Subject` header.
    pub subject: Option<Digest>,
    /// The tags given as `?tag=` parameters, all now pointing at the
    /// manifest: one `OCI-Tag` header each.
    pub tags: Vec<String>,
}

fn manifest_unknown(repo: &str, reference: &str) -> RegistryError {
    RegistryError::new(
        ErrorCode::ManifestUnknown,
        format!("manifest {reference} is unknown to repository {repo}"),
    )
}

enum Ref {
    Tag(String),
    Digest(Digest),
}

fn parse_reference(reference: &str) -> Result<Ref, RegistryError> {
    if reference.contains(':') {
        reference
            .parse()
            .map(Ref::Digest)
            .map_err(|e: berth_oci::DigestError| {
                RegistryError::new(ErrorCode::DigestInvalid, e.to_string())
            })
    } else {
        berth_oci::validate_tag(reference)
            .map(|()| Ref::Tag(reference.to_string()))
            .map_err(|e| {
                RegistryError::new(ErrorCode::ManifestInvalid, e.to_string()).with_status(400)
            })
    }
}

/// A reference named by a GET, HEAD or DELETE. A malformed digest is the
/// client's mistake (400 DIGEST_INVALID); a string that is not a valid tag
/// can name nothing stored, so it is simply unknown (404 MANIFEST_UNKNOWN):
/// the OCI conformance suite GETs `.INVALID_MANIFEST_NAME` and wants a 404.
fn lookup_reference(repo: &str, reference: &str) -> Result<Ref, RegistryError> {
    match parse_reference(reference) {
        Ok(r) => Ok(r),
        Err(e) if reference.contains(':') => Err(e),
        Err(_) => Err(manifest_unknown(repo, reference)),
    }
}

impl Registry {
    fn resolve(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Digest, ManifestRecord), RegistryError> {
        check_repo(repo)?;
        let d = match lookup_reference(repo, reference)? {
            Ref::Digest(d) => d,
            Ref::Tag(t) => self
                .state
                .resolve_tag(repo, &t)?
                .ok_or_else(|| manifest_unknown(repo, reference))?,
        };
        let rec = self
            .state
            .get_manifest(repo, &d)?
            .ok_or_else(|| manifest_unknown(repo, reference))?;
        Ok((d, rec))
    }

    /// Fetch a manifest by tag or digest; `with_body` false for HEAD.
    pub async fn manifest_get(
        &self,
        repo: &str,
        reference: &str,
        with_body: bool,
    ) -> Result<ManifestGet, RegistryError> {
        let (digest, rec) = self.resolve(repo, reference)?;
        let body = if with_body {
            match self
                .content
                .read_small(&digest, self.config.max_manifest_bytes)
                .await
            {
                Ok(b) => b,
                Err(berth_content::ContentError::NotFound(_)) => {
                    return Err(manifest_unknown(repo, reference));
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            Vec::new()
        };
        Ok(ManifestGet {
            digest,
            media_type: rec.media_type,
            size: rec.size,
            body,
        })
    }

    /// Store a manifest under a tag or its digest.
    pub async fn manifest_put(
        &self,
        repo: &str,
        reference: &str,
        extra_tags: &[String],
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<ManifestPut, RegistryError> {
        check_repo(repo)?;
        let reference = parse_reference(reference)?;
        for t in extra_tags {
            berth_oci::validate_tag(t).map_err(|e| {
                RegistryError::new(ErrorCode::ManifestInvalid, format!("tag parameter: {e}"))
                    .with_status(400)
            })?;
        }
        if body.len() as u64 > self.config.max_manifest_bytes {
            return Err(RegistryError::new(
                ErrorCode::SizeInvalid,
                format!(
                    "manifest is {} bytes; the limit is {}",
                    body.len(),
                    self.config.max_manifest_bytes
                ),
            )
            .with_status(413));
        }
        let summary = ManifestSummary::parse(content_type, body)
            .map_err(|e| RegistryError::new(ErrorCode::ManifestInvalid, e.to_string()))?;
        let digest = match &reference {
            Ref::Digest(want) => {
                let got = want.of_same_kind(body);
                if &got != want {
                    return Err(RegistryError::new(
                        ErrorCode::DigestInvalid,
                        format!("manifest has digest {got}, not {want} as its URL says"),
                    )
                    .with_detail(serde_json::json!({ "digest": want.to_string() })));
                }
                got
            }
            Ref::Tag(_) => Digest::sha256_of(body),
        };
        self.check_references(repo, &summary).await?;

        self.protect(&digest).await?;
        self.content
            .write_blob(&digest, Some(body.len() as u64), body)
            .await?;
        let mut refs = vec![digest.clone()];
        refs.extend(summary.blob_refs().map(|d| d.digest.clone()));
        let record = ManifestRecord {
            media_type: summary.media_type.clone(),
            size: body.len() as u64,
            refs,
            subject: summary.subject.as_ref().map(|s| s.digest.clone()),
            artifact_type: summary.artifact_type.clone(),
            annotations: summary.annotations.clone(),
            created: berth_state::now(),
        };
        let referrer = summary.subject.as_ref().map(|_| Descriptor {
            media_type: summary.media_type.clone(),
            digest: digest.clone(),
            size: body.len() as u64,
            artifact_type: summary.artifact_type.clone(),
            annotations: summary.annotations.clone(),
            platform: None,
            urls: None,
        });
        let mut extra: Vec<&str> = extra_tags.iter().map(String::as_str).collect();
        extra.sort_unstable();
        extra.dedup();
        let mut tags = extra.clone();
        if let Ref::Tag(t) = &reference
            && !tags.contains(&t.as_str())
        {
            tags.push(t);
        }
        self.state
            .put_manifest(repo, &digest, &record, referrer.as_ref(), &tags)
            .map_err(|e| match e {
                berth_state::StateError::BlobDeleting(d) => RegistryError::new(
                    ErrorCode::ManifestBlobUnknown,
                    format!("blob {d} was garbage collected; push it again"),
                )
                .with_detail(serde_json::json!({ "digest": d.to_string() })),
                other => other.into(),
            })?;
        Ok(ManifestPut {
            digest,
            subject: record.subject,
            tags: extra.into_iter().map(str::to_string).collect(),
        })
    }

    /// Every blob a manifest names must be in the repository, and every
    /// manifest an index names must be stored there. The subject need not be.
    async fn check_references(&self, repo: &str, m: &ManifestSummary) -> Result<(), RegistryError> {
        let missing = |d: &Digest, what: &str| {
            RegistryError::new(
                ErrorCode::ManifestBlobUnknown,
                format!("manifest references {what} {d}, which repository {repo} does not have; push it first"),
            )
            .with_detail(serde_json::json!({ "digest": d.to_string() }))
        };
        for desc in m.blob_refs() {
            let present = self.state.blob_linked(repo, &desc.digest)?
                && self.content.stat(&desc.digest).await?.is_some();
            if !present {
                return Err(missing(&desc.digest, "blob"));
            }
            self.state
                .touch_blob(&desc.digest)
                .map_err(|_| missing(&desc.digest, "blob"))?;
        }
        for desc in &m.manifests {
            if self.state.get_manifest(repo, &desc.digest)?.is_none() {
                return Err(missing(&desc.digest, "manifest"));
            }
        }
        Ok(())
    }

    /// Delete a manifest by digest (with its tags), or just a tag.
    pub async fn manifest_delete(&self, repo: &str, reference: &str) -> Result<(), RegistryError> {
        check_repo(repo)?;
        let found = match lookup_reference(repo, reference)? {
            Ref::Digest(d) => self.state.delete_manifest(repo, &d)?,
            Ref::Tag(t) => self.state.delete_tag(repo, &t)?,
        };
        if found {
            Ok(())
        } else {
            Err(manifest_unknown(repo, reference))
        }
    }
}
