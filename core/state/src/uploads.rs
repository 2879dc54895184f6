//! Registry upload sessions and local image records.

use berth_oci::Digest;
use sled::Transactional;

use crate::blobs::adjust_refs;
use crate::json::{decode, encode};
use crate::records::{ImageRecord, UploadRecord};
use crate::{State, StateError};

impl State {
    pub fn put_upload(&self, id: &str, rec: &UploadRecord) -> Result<(), StateError> {
        self.uploads.insert(id, encode(rec))?;
        self.uploads.flush()?;
        Ok(())
    }

    pub fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StateError> {
        self.uploads
            .get(id)?
            .map(|v| decode(id.as_bytes(), &v))
            .transpose()
    }

    pub fn remove_upload(&self, id: &str) -> Result<bool, StateError> {
        let existed = self.uploads.remove(id)?.is_some();
        self.uploads.flush()?;
        Ok(existed)
    }

    pub fn list_uploads(&self) -> Result<Vec<(String, UploadRecord)>, StateError> {
        self.uploads
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode(&k, &v)?))
            })
            .collect()
    }

    /// Record (or replace) a local image, moving blob references from the
    /// image it replaces to this one in the same transaction.
    pub fn put_image(&self, rec: &ImageRecord) -> Result<(), StateError> {
        let key = rec.reference.clone();
        (&self.images, &self.blob_meta).transaction(|(images, meta)| {
            if let Some(old) = images.get(key.as_bytes())? {
                let old: ImageRecord = decode(key.as_bytes(), &old)
                    .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                adjust_refs(meta, &old.refs, -1)?;
            }
            adjust_refs(meta, &rec.refs, 1)?;
            images.insert(key.as_bytes(), encode(rec))?;
            Ok(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    pub fn get_image(&self, reference: &str) -> Result<Option<ImageRecord>, StateError> {
        self.images
            .get(reference)?
            .map(|v| decode(reference.as_bytes(), &v))
            .transpose()
    }

    /// Remove a local image record. Returns it if it existed.
    pub fn remove_image(&self, reference: &str) -> Result<Option<ImageRecord>, StateError> {
        let removed = (&self.images, &self.blob_meta).transaction(|(images, meta)| {
            let Some(old) = images.remove(reference.as_bytes())? else {
                return Ok(None);
            };
            let old: ImageRecord = decode(reference.as_bytes(), &old)
                .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
            adjust_refs(meta, &old.refs, -1)?;
            Ok(Some(old))
        })?;
        self.db.flush()?;
        Ok(removed)
    }

    pub fn list_images(&self) -> Result<Vec<ImageRecord>, StateError> {
        self.images
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Images whose manifest is `d` (for `rmi` by ID).
    pub fn images_with_manifest(&self, d: &Digest) -> Result<Vec<ImageRecord>, StateError> {
        Ok(self
            .list_images()?
            .into_iter()
            .filter(|i| &i.manifest == d)
            .collect())
    }
}
