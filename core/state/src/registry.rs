//! Repositories, tags, manifests, referrers and repository blob links.

use berth_oci::{Descriptor, Digest};
use sled::Transactional;
use sled::transaction::abort;

use crate::blobs::adjust_refs;
use crate::json::{decode, encode};
use crate::records::ManifestRecord;
use crate::{State, StateError, keys, now};

/// Keys after `last` (exclusive), at most `n` of them, from an ordered iterator.
fn page(items: impl Iterator<Item = String>, last: Option<&str>, n: Option<usize>) -> Vec<String> {
    let it = items.filter(|s| last.is_none_or(|l| s.as_str() > l));
    match n {
        Some(n) => it.take(n).collect(),
        None => it.collect(),
    }
}

impl State {
    pub fn repo_exists(&self, repo: &str) -> Result<bool, StateError> {
        Ok(self.repos.contains_key(repo)?)
    }

    /// Repository names in lexical order, for `_catalog`.
    pub fn list_repos(
        &self,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Vec<String>, StateError> {
        let names: Result<Vec<String>, StateError> = self
            .repos
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect();
        Ok(page(names?.into_iter(), last, n))
    }

    /// Record that `repo` holds blob `d` (after an upload or mount), marking
    /// it used now.
    pub fn link_blob(&self, repo: &str, d: &Digest) -> Result<(), StateError> {
        let ds = d.to_string();
        (&self.repo_blobs, &self.blob_meta, &self.repos).transaction(|(links, meta, repos)| {
            let mut m: crate::BlobMeta = match meta.get(ds.as_bytes())? {
                Some(v) => decode(ds.as_bytes(), &v)
                    .map_err(sled::transaction::ConflictableTransactionError::Abort)?,
                None => Default::default(),
            };
            if m.deleting {
                return abort(StateError::BlobDeleting(d.clone()));
            }
            m.last_used = now();
            meta.insert(ds.as_bytes(), encode(&m))?;
            links.insert(keys::key(&[repo, &ds]), &now().to_be_bytes())?;
            if repos.get(repo.as_bytes())?.is_none() {
                repos.insert(repo.as_bytes(), &now().to_be_bytes())?;
            }
            Ok(())
        })?;
        Ok(())
    }

    pub fn blob_linked(&self, repo: &str, d: &Digest) -> Result<bool, StateError> {
        Ok(self
            .repo_blobs
            .contains_key(keys::key(&[repo, &d.to_string()]))?)
    }

    /// Remove a repository's link to a blob. Returns whether it existed.
    pub fn unlink_blob(&self, repo: &str, d: &Digest) -> Result<bool, StateError> {
        let existed = self
            .repo_blobs
            .remove(keys::key(&[repo, &d.to_string()]))?
            .is_some();
        self.db.flush()?;
        Ok(existed)
    }

    pub fn get_manifest(
        &self,
        repo: &str,
        d: &Digest,
    ) -> Result<Option<ManifestRecord>, StateError> {
        let k = keys::key(&[repo, &d.to_string()]);
        self.manifests.get(&k)?.map(|v| decode(&k, &v)).transpose()
    }

    /// Store a manifest record (and give it `tags`), taking references on its blobs
    /// and indexing it as a referrer of its subject, all in one transaction.
    /// `referrer` is the descriptor the referrers API lists for it.
    pub fn put_manifest(
        &self,
        repo: &str,
        d: &Digest,
        record: &ManifestRecord,
        referrer: Option<&Descriptor>,
        tags: &[&str],
    ) -> Result<(), StateError> {
        let ds = d.to_string();
        let mkey = keys::key(&[repo, &ds]);
        (
            &self.manifests,
            &self.tags,
            &self.referrers,
            &self.blob_meta,
            &self.repos,
        )
            .transaction(|(manifests, tag_tree, referrers, meta, repos)| {
                if manifests.get(&mkey)?.is_none() {
                    adjust_refs(meta, &record.refs, 1)?;
                    manifests.insert(mkey.clone(), encode(record))?;
                    if let (Some(subject), Some(desc)) = (&record.subject, referrer) {
                        referrers
                            .insert(keys::key(&[repo, &subject.to_string(), &ds]), encode(desc))?;
                    }
                }
                for t in tags {
                    tag_tree.insert(keys::key(&[repo, t]), ds.as_bytes())?;
                }
                if repos.get(repo.as_bytes())?.is_none() {
                    repos.insert(repo.as_bytes(), &now().to_be_bytes())?;
                }
                Ok(())
            })?;
        self.db.flush()?;
        Ok(())
    }

    /// Delete a manifest, the tags that point at it and its referrer entry,
    /// and drop its blob references. Returns whether it existed.
    pub fn delete_manifest(&self, repo: &str, d: &Digest) -> Result<bool, StateError> {
        let ds = d.to_string();
        let mkey = keys::key(&[repo, &ds]);
        let tag_keys: Vec<sled::IVec> = self
            .tags
            .scan_prefix(keys::prefix(&[repo]))
            .filter_map(Result::ok)
            .filter(|(_, v)| v.as_ref() == ds.as_bytes())
            .map(|(k, _)| k)
            .collect();
        let existed = (
            &self.manifests,
            &self.tags,
            &self.referrers,
            &self.blob_meta,
        )
            .transaction(|(manifests, tags, referrers, meta)| {
                let Some(v) = manifests.remove(mkey.clone())? else {
                    return Ok(false);
                };
                let rec: ManifestRecord = decode(&mkey, &v)
                    .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                adjust_refs(meta, &rec.refs, -1)?;
                if let Some(subject) = &rec.subject {
                    referrers.remove(keys::key(&[repo, &subject.to_string(), &ds]))?;
                }
                for k in &tag_keys {
                    if tags.get(k)?.as_deref() == Some(ds.as_bytes()) {
                        tags.remove(k)?;
                    }
                }
                Ok(true)
            })?;
        self.db.flush()?;
        Ok(existed)
    }

    pub fn resolve_tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>, StateError> {
        let k = keys::key(&[repo, tag]);
        Ok(self
            .tags
            .get(&k)?
            .and_then(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok())))
    }

    /// Remove one tag; the manifest stays. Returns whether it existed.
    pub fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool, StateError> {
        let existed = self.tags.remove(keys::key(&[repo, tag]))?.is_some();
        self.db.flush()?;
        Ok(existed)
    }

    /// Tags of `repo` in lexical order, after `last`, at most `n`.
    pub fn list_tags(
        &self,
        repo: &str,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Vec<String>, StateError> {
        // A tag written while its manifest was being deleted can outlive it
        // (the delete's tag scan cannot run inside its transaction); such a
        // tag names nothing, so it is not listed.
        let mut tags = Vec::new();
        for kv in self.tags.scan_prefix(keys::prefix(&[repo])) {
            let (k, v) = kv?;
            let target = keys::key(&[repo, &String::from_utf8_lossy(&v)]);
            if self.manifests.contains_key(target)? {
                tags.push(keys::last(&k));
            }
        }
        Ok(page(tags.into_iter(), last, n))
    }

    /// Manifests in `repo` whose subject is `subject`.
    pub fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<Descriptor>, StateError> {
        self.referrers
            .scan_prefix(keys::prefix(&[repo, &subject.to_string()]))
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Every (repository, manifest) pair, for consistency checks.
    pub fn all_manifests(&self) -> Result<Vec<(String, Digest, ManifestRecord)>, StateError> {
        let mut out = Vec::new();
        for kv in self.manifests.iter() {
            let (k, v) = kv?;
            let ks = String::from_utf8_lossy(&k).into_owned();
            let Some((repo, d)) = ks.split_once('\0') else {
                continue;
            };
            let Ok(d) = d.parse() else { continue };
            out.push((repo.to_string(), d, decode(&k, &v)?));
        }
        Ok(out)
    }
}
