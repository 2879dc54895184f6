//! Tag lists, the catalog and the referrers API.

use berth_oci::{Digest, ErrorCode, media_types};

use crate::error::{check_repo, parse_digest};
use crate::{Registry, RegistryError};

/// One page of names; `more` says whether a `Link` to the next page is due.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

fn paged(mut items: Vec<String>, n: Option<usize>) -> Page {
    match n {
        Some(n) if items.len() > n => {
            items.truncate(n);
            Page { items, more: true }
        }
        _ => Page { items, more: false },
    }
}

impl Registry {
    /// Tags of a repository in lexical order, after `last`, at most `n`.
    pub fn tags(
        &self,
        repo: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
        check_repo(repo)?;
        if !self.state.repo_exists(repo)? {
            return Err(RegistryError::new(
                ErrorCode::NameUnknown,
                format!("repository {repo} is not known to this registry"),
            ));
        }
        let items = self.state.list_tags(repo, last, n.map(|n| n + 1))?;
        Ok(paged(items, n))
    }

    /// Repository names in lexical order, after `last`, at most `n`.
    pub fn catalog(&self, n: Option<usize>, last: Option<&str>) -> Result<Page, RegistryError> {
        let items = self.state.list_repos(last, n.map(|n| n + 1))?;
        Ok(paged(items, n))
    }

    /// The referrers of `subject` as an OCI image index, filtered by
    /// `artifact_type` if given. Returns the JSON and whether a filter applied.
    pub fn referrers(
        &self,
        repo: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<(Vec<u8>, bool), RegistryError> {
        check_repo(repo)?;
        let subject: Digest = parse_digest(subject)?;
        let mut list = self.state.referrers(repo, &subject)?;
        if let Some(at) = artifact_type {
            list.retain(|d| d.artifact_type.as_deref() == Some(at));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": list,
        });
        Ok((
            serde_json::to_vec(&index).unwrap_or_default(),
            artifact_type.is_some(),
        ))
    }
}
