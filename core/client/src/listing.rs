//! Listings: tags with `n`/`last` and `Link` pagination, the catalog, and
//! the referrers API (with the spec's tag-schema fallback for registries
//! that predate it).

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, LINK};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use berth_oci::{Descriptor, Digest, ErrorCode, media_types};

use crate::auth::Scope;
use crate::error::ClientError;
use crate::manifests::{MAX_MANIFEST, parse_json, read_limited};
use crate::transport::{RegistryClient, Repository, Req};

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
}
