//! Manifests: GET (verified against the digest asked for or announced),
//! HEAD, PUT with the right Content-Type, DELETE.

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;

use berth_oci::{Digest, media_types};

use crate::auth::Scope;
use crate::error::ClientError;
use crate::transport::{RegistryClient, Repository, Req, ReqBody};

/// Registries must accept manifests up to 4 MiB; refuse to read beyond it.
pub(crate) const MAX_MANIFEST: usize = 4 * 1024 * 1024;
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// A manifest exactly as the registry sent it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    /// Digest of `bytes`, computed here (never taken on trust).
    pub digest: Digest,
    pub bytes: Bytes,
}

/// What a HEAD on a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub media_type: String,
    pub digest: Option<Digest>,
    pub size: u64,
}

impl RegistryClient {
    /// GET a manifest by tag or digest, accepting every manifest type.
    pub async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Manifest, ClientError> {
        let op = format!("fetching manifest {reference}");
        let resp = self
            .manifest_request(Method::GET, repo, reference, &op)
            .await?;
        let media_type = content_type(resp.headers());
        let announced = announced_digest(resp.headers());
        let bytes = read_limited(resp, MAX_MANIFEST, &repo.registry, &op).await?;
        // A digest reference is checked against itself; a tag against what
        // the registry announced, if it did.
        let expected = reference.parse::<Digest>().ok().or(announced);
        let digest = match &expected {
            Some(e) => e.of_same_kind(&bytes),
            None => Digest::sha256_of(&bytes),
        };
        if let Some(e) = expected
            && e != digest
        {
            return Err(ClientError::DigestMismatch {
                registry: repo.registry.clone(),
                repository: repo.name.clone(),
                what: "manifest",
                digest: e,
                actual: digest,
            });
        }
        let media_type = media_type
            .filter(|m| media_types::is_manifest(m))
            .or_else(|| body_media_type(&bytes))
            .unwrap_or_else(|| media_types::OCI_MANIFEST.to_string());
        Ok(Manifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// HEAD a manifest: `None` if the registry does not have it.
    pub async fn head_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<ManifestInfo>, ClientError> {
        let op = format!("checking manifest {reference}");
        let url = self.manifest_url(repo, reference)?;
        let mut req = Req::new(
            Method::HEAD,
            url,
            Scope::pull(&repo.registry, &repo.name),
            &op,
        );
        accept_manifests(&mut req.headers);
        let resp = self.send(req).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), &op)
                .await);
        }
        let h = resp.headers();
        Ok(Some(ManifestInfo {
            media_type: content_type(h).unwrap_or_default(),
            digest: announced_digest(h),
            size: h
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }))
    }

    /// PUT a manifest under a tag or its digest. Returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, ClientError> {
        let op = format!("pushing manifest {reference}");
        let digest = match reference.parse::<Digest>() {
            Ok(d) => {
                let actual = d.of_same_kind(&bytes);
                if actual != d {
                    return Err(ClientError::DigestMismatch {
                        registry: repo.registry.clone(),
                        repository: repo.name.clone(),
                        what: "manifest to push",
                        digest: d,
                        actual,
                    });
                }
                Digest::sha256_of(&bytes)
            }
            Err(_) => Digest::sha256_of(&bytes),
        };
        let url = self.manifest_url(repo, reference)?;
        let mut req = Req::new(
            Method::PUT,
            url,
            Scope::push(&repo.registry, &repo.name),
            &op,
        );
        let ct = HeaderValue::from_str(media_type).map_err(|_| ClientError::BadRegistry {
            registry: repo.registry.clone(),
            detail: format!("media type {media_type:?} is not a valid header value"),
        })?;
        req.headers.insert(CONTENT_TYPE, ct);
        req.body = ReqBody::Bytes(bytes);
        // PUT of the same manifest is idempotent: plain retries are safe.
        let resp = self.send(req).await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), &op)
                .await);
        }
        if let Some(d) = announced_digest(resp.headers())
            && d != digest
        {
            tracing::warn!(announced = %d, computed = %digest, "registry announced another manifest digest");
        }
        Ok(digest)
    }

    /// DELETE a manifest by digest.
    pub async fn delete_manifest(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<(), ClientError> {
        let op = format!("deleting manifest {digest}");
        let url = self.manifest_url(repo, &digest.to_string())?;
        let resp = self
            .send(Req::new(
                Method::DELETE,
                url,
                Scope::push(&repo.registry, &repo.name),
                &op,
            ))
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), &op)
                .await);
        }
        Ok(())
    }

    fn manifest_url(&self, repo: &Repository, reference: &str) -> Result<Url, ClientError> {
        self.url(
            &repo.registry,
            &format!("/v2/{}/manifests/{reference}", repo.name),
        )
    }

    async fn manifest_request(
        &self,
        method: Method,
        repo: &Repository,
        reference: &str,
        op: &str,
    ) -> Result<Response, ClientError> {
        let url = self.manifest_url(repo, reference)?;
        let mut req = Req::new(method, url, Scope::pull(&repo.registry, &repo.name), op);
        accept_manifests(&mut req.headers);
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), op)
                .await);
        }
        Ok(resp)
    }
}

fn accept_manifests(h: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&media_types::accept_header()) {
        h.insert(ACCEPT, v);
    }
}

fn content_type(h: &HeaderMap) -> Option<String> {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .filter(|v| !v.is_empty())
}

fn announced_digest(h: &HeaderMap) -> Option<Digest> {
    h.get(DOCKER_CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn body_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct M {
        media_type: Option<String>,
    }
    serde_json::from_slice::<M>(bytes).ok()?.media_type
}

pub(crate) async fn read_limited(
    mut resp: Response,
    cap: usize,
    registry: &str,
    op: &str,
) -> Result<Bytes, ClientError> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > cap {
                    return Err(ClientError::BadResponse {
                        registry: registry.to_string(),
                        operation: op.to_string(),
                        detail: format!("the answer is larger than {cap} bytes"),
                    });
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(Bytes::from(out)),
            Err(source) => {
                return Err(ClientError::Http {
                    registry: registry.to_string(),
                    operation: op.to_string(),
                    source,
                });
            }
        }
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    registry: &str,
    op: &str,
) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::BadResponse {
        registry: registry.to_string(),
        operation: op.to_string(),
        detail: format!("not the expected JSON: {e}"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;

    #[test]
    fn media_type_from_header_or_body() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            "application/vnd.oci.image.index.v1+json; charset=utf-8"
                .parse()
                .unwrap(),
        );
        assert_eq!(content_type(&h).as_deref(), Some(media_types::OCI_INDEX));
        assert_eq!(
            body_media_type(br#"{"mediaType":"x/y"}"#).as_deref(),
            Some("x/y")
        );
        assert_eq!(body_media_type(b"[]"), None);
    }
}
