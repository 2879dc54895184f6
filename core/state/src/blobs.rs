//! Blob reference counts, use times and garbage-collection claims.

use std::collections::BTreeSet;

use berth_oci::Digest;
use sled::transaction::{ConflictableTransactionResult, TransactionalTree, abort};

use crate::json::{decode, encode};
use crate::records::BlobMeta;
use crate::{State, StateError, keys, now};

type TxResult<T> = ConflictableTransactionResult<T, StateError>;

fn meta_of(tree: &TransactionalTree, d: &Digest) -> TxResult<BlobMeta> {
    let k = d.to_string();
    Ok(match tree.get(k.as_bytes())? {
        Some(v) => decode(k.as_bytes(), &v)
            .map_err(sled::transaction::ConflictableTransactionError::Abort)?,
        None => BlobMeta::default(),
    })
}

/// Add `delta` references to each distinct blob in `refs`, inside a
/// transaction. Adding a reference to a blob that is being collected aborts
/// with [`StateError::BlobDeleting`].
pub(crate) fn adjust_refs(tree: &TransactionalTree, refs: &[Digest], delta: i64) -> TxResult<()> {
    let distinct: BTreeSet<&Digest> = refs.iter().collect();
    let t = now();
    for d in distinct {
        let mut m = meta_of(tree, d)?;
        if delta > 0 {
            if m.deleting {
                return abort(StateError::BlobDeleting(d.clone()));
            }
            m.refs += delta as u64;
            m.last_used = t;
        } else {
            m.refs = m.refs.saturating_sub(delta.unsigned_abs());
        }
        tree.insert(d.to_string().as_bytes(), encode(&m))?;
    }
    Ok(())
}

impl State {
    /// Mark a blob as in use now, so the collector leaves it alone for its
    /// grace period. Fails if it is being collected: the caller must then
    /// treat it as absent.
    pub fn touch_blob(&self, d: &Digest) -> Result<(), StateError> {
        self.blob_meta.transaction(|tree| {
            let mut m = meta_of(tree, d)?;
            if m.deleting {
                return abort(StateError::BlobDeleting(d.clone()));
            }
            m.last_used = now();
            tree.insert(d.to_string().as_bytes(), encode(&m))?;
            Ok(())
        })?;
        Ok(())
    }

    pub fn blob_meta(&self, d: &Digest) -> Result<BlobMeta, StateError> {
        let k = d.to_string();
        Ok(match self.blob_meta.get(&k)? {
            Some(v) => decode(k.as_bytes(), &v)?,
            None => BlobMeta::default(),
        })
    }

    /// Claim an unreferenced blob not used after `cutoff` for deletion (with
    /// a grace of 0, `cutoff` is now and nothing is protected). On
    /// `true` the caller deletes the file and then calls [`State::release_blob`].
    pub fn claim_blob_for_gc(&self, d: &Digest, cutoff: u64) -> Result<bool, StateError> {
        let claimed = self.blob_meta.transaction(|tree| {
            let mut m = meta_of(tree, d)?;
            if m.refs > 0 || m.deleting || m.last_used > cutoff {
                return Ok(false);
            }
            m.deleting = true;
            tree.insert(d.to_string().as_bytes(), encode(&m))?;
            Ok(true)
        })?;
        Ok(claimed)
    }

    /// Forget a collected blob: its tombstone and every repository link to it.
    pub fn release_blob(&self, d: &Digest) -> Result<(), StateError> {
        let ds = d.to_string();
        let stale: Vec<_> = self
            .repo_blobs
            .iter()
            .keys()
            .filter_map(Result::ok)
            .filter(|k| keys::last(k) == ds)
            .collect();
        for k in stale {
            self.repo_blobs.remove(k)?;
        }
        self.blob_meta.remove(ds.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Undo a claim without deleting (the file could not be removed).
    pub fn unclaim_blob(&self, d: &Digest) -> Result<(), StateError> {
        let mut m = self.blob_meta(d)?;
        m.deleting = false;
        self.blob_meta
            .insert(d.to_string().as_bytes(), encode(&m))?;
        Ok(())
    }

    /// Blobs with a tombstone: a crash between claim and release leaves
    /// these; start-up finishes their collection.
    pub fn blobs_being_deleted(&self) -> Result<Vec<Digest>, StateError> {
        let mut out = Vec::new();
        for kv in self.blob_meta.iter() {
            let (k, v) = kv?;
            let m: BlobMeta = decode(&k, &v)?;
            if m.deleting
                && let Ok(d) = String::from_utf8_lossy(&k).parse()
            {
                out.push(d);
            }
        }
        Ok(out)
    }
}
