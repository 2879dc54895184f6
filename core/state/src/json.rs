//! JSON values in sled.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StateError;

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(v).map_err(|source| StateError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising our own plain records cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

/// A tree of JSON values keyed by strings.
#[derive(Clone)]
pub struct JsonTree {
    tree: sled::Tree,
}

impl JsonTree {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        JsonTree { tree }
    }

    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StateError> {
        self.tree
            .get(key)?
            .map(|v| decode(key.as_bytes(), &v))
            .transpose()
    }

    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StateError> {
        self.tree.insert(key, encode(value))?;
        self.tree.flush()?;
        Ok(())
    }

    /// Returns whether the key existed.
    pub fn remove(&self, key: &str) -> Result<bool, StateError> {
        let existed = self.tree.remove(key)?.is_some();
        self.tree.flush()?;
        Ok(existed)
    }

    /// [`JsonTree::remove`] without waiting for the disk: sled writes it
    /// with its next flush (within 200 ms). For a removal that start-up
    /// would finish anyway if a power cut undid it.
    pub fn remove_unflushed(&self, key: &str) -> Result<bool, StateError> {
        Ok(self.tree.remove(key)?.is_some())
    }

    /// Every entry, in key order.
    pub fn list<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>, StateError> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode(&k, &v)?))
            })
            .collect()
    }
}
