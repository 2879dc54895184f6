//! The overlay snapshotter's records in sled: key → [`Record`]. Each change
//! that touches more than one record (a parent's child count, a commit's
//! rename) is one transaction.

use berth_state::{JsonTree, TxAbort};
use serde::{Deserialize, Serialize};

use crate::{Info, Kind, Labels, SnapshotError};

/// One snapshot, stored under its key (or committed name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Names the directory `snapshots/ID`; short so that overlay options
    /// stay short.
    pub id: u64,
    pub parent: Option<String>,
    pub kind: Kind,
    pub created: u64,
    #[serde(default)]
    pub labels: Labels,
    /// How many snapshots name this one as parent; removal needs zero.
    #[serde(default)]
    pub children: u64,
}

impl Record {
    pub fn info(&self, name: &str) -> Info {
        Info {
            name: name.to_owned(),
            parent: self.parent.clone(),
            kind: self.kind,
            created: self.created,
            labels: self.labels.clone(),
        }
    }
}

type Tx<T> = Result<T, TxAbort<SnapshotError>>;

fn abort<T>(e: SnapshotError) -> Tx<T> {
    Err(TxAbort::Abort(e))
}

pub(crate) fn get(tree: &JsonTree, key: &str) -> Result<Record, SnapshotError> {
    tree.get(key)?
        .ok_or_else(|| SnapshotError::NotFound(key.to_owned()))
}

pub(crate) fn list(tree: &JsonTree) -> Result<Vec<(String, Record)>, SnapshotError> {
    Ok(tree.list()?)
}

/// Insert `record` under `key`, counting it as a child of its parent, which
/// must be committed.
pub(crate) fn create(tree: &JsonTree, key: &str, record: &Record) -> Result<(), SnapshotError> {
    tree.transaction(|tx| {
        if tx.get::<Record, _>(key)?.is_some() {
            return abort(SnapshotError::AlreadyExists(key.to_owned()));
        }
        if let Some(p) = &record.parent {
            let Some(mut parent) = tx.get::<Record, _>(p)? else {
                return abort(SnapshotError::NotFound(p.clone()));
            };
            if parent.kind != Kind::Committed {
                return abort(SnapshotError::precondition(
                    key,
                    format!(
                        "parent {p:?} is not committed; only committed snapshots can be parents"
                    ),
                ));
            }
            parent.children += 1;
            tx.put(p, &parent)?;
        }
        tx.put(key, record)
    })
}

/// Rename active `key` to committed `name`, adding `labels`.
pub(crate) fn commit(
    tree: &JsonTree,
    name: &str,
    key: &str,
    labels: &Labels,
    now: u64,
) -> Result<(), SnapshotError> {
    tree.transaction(|tx| {
        let Some(mut rec) = tx.get::<Record, _>(key)? else {
            return abort(SnapshotError::NotFound(key.to_owned()));
        };
        if rec.kind != Kind::Active {
            return abort(SnapshotError::precondition(
                key,
                format!("is {:?}; only active snapshots can be committed", rec.kind),
            ));
        }
        if rec.labels.contains_key(crate::DISPOSABLE) {
            return abort(SnapshotError::precondition(
                key,
                "is disposable (its writes were never made durable); it cannot be committed",
            ));
        }
        if name != key && tx.get::<Record, _>(name)?.is_some() {
            return abort(SnapshotError::AlreadyExists(name.to_owned()));
        }
        tx.remove(key)?;
        rec.kind = Kind::Committed;
        rec.created = now;
        rec.labels
            .extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        tx.put(name, &rec)
    })
}

/// Delete `key`'s record if it has no children; returns it so the caller
/// can delete its directory afterwards.
pub(crate) fn remove(tree: &JsonTree, key: &str) -> Result<Record, SnapshotError> {
    tree.transaction(|tx| {
        let Some(rec) = tx.get::<Record, _>(key)? else {
            return abort(SnapshotError::NotFound(key.to_owned()));
        };
        if rec.children > 0 {
            return abort(SnapshotError::precondition(
                key,
                format!("has {} child snapshot(s); remove them first", rec.children),
            ));
        }
        tx.remove(key)?;
        if let Some(p) = &rec.parent
            && let Some(mut parent) = tx.get::<Record, _>(p)?
        {
            parent.children = parent.children.saturating_sub(1);
            tx.put(p, &parent)?;
        }
        Ok(rec)
    })
}
