//! Manifests (GET, HEAD, PUT, DELETE), tag listing with `n`/`last` and
//! `Link` pagination, the referrers API (with the spec's tag-schema
//! fallback for registries that predate it) and the catalog.

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LINK};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;

use berth_oci::{Descriptor, Digest, ErrorCode, media_types};

use crate::auth::Scope;
use crate::error::ClientError;
use crate::transport::{RegistryClient, Repository, Req, ReqBody};

/// Registries must accept manifests up to 4 MiB; refuse to read beyond it.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;
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

/// One page of a tag list.
#[derive(Debug, Clone)]
pub struct TagsPage {
    pub tags: Vec<String>,
    /// URL of the next page, from the `Link` header.
    pub next: Option<String>,
}

/// One page of the catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub repositories: Vec<String>,
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RepoList {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct IndexManifests {
    #[serde(default)]
    manifests: Vec<Descriptor>,
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

    /// One page of tags: at most `n`, after `last`.
    pub async fn list_tags(
        &self,
        repo: &Repository,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<TagsPage, ClientError> {
        let mut url = self.url(&repo.registry, &format!("/v2/{}/tags/list", repo.name))?;
        paginate(&mut url, n, last);
        self.tags_at(repo, url).await
    }

    /// The page after `page`, if there is one.
    pub async fn next_tags(
        &self,
        repo: &Repository,
        page: &TagsPage,
    ) -> Result<Option<TagsPage>, ClientError> {
        match &page.next {
            None => Ok(None),
            Some(next) => {
                let url = self.join_link(&repo.registry, next, "listing tags")?;
                self.tags_at(repo, url).await.map(Some)
            }
        }
    }

    /// Every tag, following `Link` pages.
    pub async fn list_all_tags(&self, repo: &Repository) -> Result<Vec<String>, ClientError> {
        let mut page = self.list_tags(repo, None, None).await?;
        let mut all = std::mem::take(&mut page.tags);
        while let Some(mut p) = self.next_tags(repo, &page).await? {
            all.append(&mut p.tags);
            page = p;
        }
        Ok(all)
    }

    async fn tags_at(&self, repo: &Repository, url: Url) -> Result<TagsPage, ClientError> {
        let op = "listing tags";
        let resp = self
            .send(Req::new(
                Method::GET,
                url.clone(),
                Scope::pull(&repo.registry, &repo.name),
                op,
            ))
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .error_from(resp, &repo.registry, Some(&repo.name), op)
                .await);
        }
        let next = next_link(resp.headers(), &url);
        let bytes = read_limited(resp, MAX_MANIFEST * 4, &repo.registry, op).await?;
        let list: TagList = parse_json(&bytes, &repo.registry, op)?;
        Ok(TagsPage {
            tags: list.tags.unwrap_or_default(),
            next,
        })
    }

    /// Manifests whose `subject` is `digest`, optionally of one artifact
    /// type. Registries without the referrers API are asked for the
    /// fallback tag `<alg>-<hex>` instead, as the spec prescribes.
    pub async fn referrers(
        &self,
        repo: &Repository,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, ClientError> {
        let op = format!("listing referrers of {digest}");
        let mut url = self.url(
            &repo.registry,
            &format!("/v2/{}/referrers/{digest}", repo.name),
        )?;
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let mut out = Vec::new();
        let mut next = Some(url);
        let mut filtered = false;
        while let Some(url) = next.take() {
            let mut req = Req::new(
                Method::GET,
                url.clone(),
                Scope::pull(&repo.registry, &repo.name),
                &op,
            );
            req.headers
                .insert(ACCEPT, HeaderValue::from_static(media_types::OCI_INDEX));
            let resp = self.send(req).await?;
            if resp.status() == StatusCode::NOT_FOUND && out.is_empty() {
                return self.referrers_by_tag(repo, digest, artifact_type).await;
            }
            if !resp.status().is_success() {
                return Err(self
                    .error_from(resp, &repo.registry, Some(&repo.name), &op)
                    .await);
            }
            filtered |= resp.headers().contains_key("oci-filters-applied");
            next = next_link(resp.headers(), &url).and_then(|n| url.join(&n).ok());
            let bytes = read_limited(resp, MAX_MANIFEST, &repo.registry, &op).await?;
            let index: IndexManifests = parse_json(&bytes, &repo.registry, &op)?;
            out.extend(index.manifests);
        }
        if !filtered && let Some(t) = artifact_type {
            out.retain(|d| d.artifact_type.as_deref() == Some(t));
        }
        Ok(out)
    }

    async fn referrers_by_tag(
        &self,
        repo: &Repository,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, ClientError> {
        let tag = format!("{}-{}", digest.algorithm(), digest.hex());
        tracing::debug!(%digest, tag, "no referrers API, reading the fallback tag");
        let manifest = match self.get_manifest(repo, &tag).await {
            Ok(m) => m,
            Err(e) if e.code() == Some(ErrorCode::ManifestUnknown) || e.status() == Some(404) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let index: IndexManifests =
            parse_json(&manifest.bytes, &repo.registry, "reading the referrers tag")?;
        Ok(index
            .manifests
            .into_iter()
            .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
            .collect())
    }

    /// One page of the registry's catalog.
    pub async fn catalog(
        &self,
        registry: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Catalog, ClientError> {
        let mut url = self.url(registry, "/v2/_catalog")?;
        paginate(&mut url, n, last);
        self.catalog_at(registry, url).await
    }

    async fn catalog_at(&self, registry: &str, url: Url) -> Result<Catalog, ClientError> {
        let op = "listing repositories";
        let resp = self
            .send(Req::new(
                Method::GET,
                url.clone(),
                Scope::catalog(registry),
                op,
            ))
            .await?;
        if !resp.status().is_success() {
            return Err(self.error_from(resp, registry, None, op).await);
        }
        let next = next_link(resp.headers(), &url);
        let bytes = read_limited(resp, MAX_MANIFEST * 4, registry, op).await?;
        let list: RepoList = parse_json(&bytes, registry, op)?;
        Ok(Catalog {
            repositories: list.repositories.unwrap_or_default(),
            next,
        })
    }

    /// The catalog page after `page`, if there is one.
    pub async fn next_catalog(
        &self,
        registry: &str,
        page: &Catalog,
    ) -> Result<Option<Catalog>, ClientError> {
        match &page.next {
            None => Ok(None),
            Some(next) => {
                let url = self.join_link(registry, next, "listing repositories")?;
                self.catalog_at(registry, url).await.map(Some)
            }
        }
    }

    /// Every repository of the registry, following `Link` pages.
    pub async fn catalog_all(&self, registry: &str) -> Result<Vec<String>, ClientError> {
        let mut page = self.catalog(registry, None, None).await?;
        let mut all = std::mem::take(&mut page.repositories);
        while let Some(mut p) = self.next_catalog(registry, &page).await? {
            all.append(&mut p.repositories);
            page = p;
        }
        Ok(all)
    }

    fn join_link(&self, registry: &str, next: &str, op: &str) -> Result<Url, ClientError> {
        self.url(registry, "/")?
            .join(next)
            .map_err(|e| ClientError::BadResponse {
                registry: registry.to_string(),
                operation: op.into(),
                detail: format!("Link {next:?} is not a URL: {e}"),
            })
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

fn paginate(url: &mut Url, n: Option<usize>, last: Option<&str>) {
    if n.is_none() && last.is_none() {
        return;
    }
    let mut q = url.query_pairs_mut();
    if let Some(n) = n {
        q.append_pair("n", &n.to_string());
    }
    if let Some(l) = last {
        q.append_pair("last", l);
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

/// The `rel="next"` target of a `Link` header, resolved against `base`.
pub(crate) fn next_link(h: &HeaderMap, base: &Url) -> Option<String> {
    for value in h.get_all(LINK).iter().filter_map(|v| v.to_str().ok()) {
        for link in value.split(',') {
            let mut parts = link.split(';');
            let target = parts.next()?.trim();
            let target = target.strip_prefix('<')?.strip_suffix('>')?;
            let is_next = parts.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                return base.join(target).ok().map(|u| u.to_string());
            }
        }
    }
    None
}

async fn read_limited(
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

fn parse_json<T: serde::de::DeserializeOwned>(
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
    fn link_headers() {
        let base = Url::parse("http://r:5000/v2/a/tags/list?n=2").unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(next_link(&h, &base), None);
        h.insert(
            LINK,
            r#"</v2/a/tags/list?last=b&n=2>; rel="next""#.parse().unwrap(),
        );
        assert_eq!(
            next_link(&h, &base).as_deref(),
            Some("http://r:5000/v2/a/tags/list?last=b&n=2")
        );
        h.insert(
            LINK,
            r#"<https://x/prev>; rel="prev", <https://x/next?last=c>; REL=next"#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h, &base).as_deref(),
            Some("https://x/next?last=c")
        );
        h.insert(LINK, "garbage".parse().unwrap());
        assert_eq!(next_link(&h, &base), None);
    }

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
