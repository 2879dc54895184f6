//! Image archives in and out: `load` (an OCI layout or `docker save` tar),
//! `save` (either format), `import` (a root file system tarball as a
//! one-layer image). Archives are streamed both ways; nothing holds a whole
//! archive or layer in memory.

use berth_image::{ArchiveFormat, ImportOptions, LoadedImage};
use berth_oci::{Descriptor, Digest, Reference, media_types};
use berth_state::ImageRecord;
use tokio::io::{AsyncRead, AsyncWrite};

use super::store::{self, NewImage};
use super::{Images, parse_ref};
use crate::EngineError;

fn archive_err(e: berth_image::ImageError) -> EngineError {
    EngineError::invalid(e.to_string())
}

/// A save whose images were all found: [`Images::save`] checks the names
/// before a byte is written, so a front end can refuse at once and stream
/// only an archive that starts.
pub struct Save {
    content: berth_content::ContentStore,
    images: Vec<(Reference, Digest)>,
    format: ArchiveFormat,
}

impl Save {
    /// Write the archive to `writer`, flush it and close it (drop it), so a
    /// reader at the other end of a pipe sees the end. An error mid-way
    /// leaves a short archive: the caller must pass the error on (break its
    /// stream), never present what was written as complete.
    pub async fn write_to<W>(self, writer: W) -> Result<(), EngineError>
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        berth_image::save(&self.content, &self.images, self.format, writer)
            .await
            .map(drop)
            .map_err(|e| EngineError::internal(format!("writing the image archive: {e}")))
    }
}

impl Images {
    /// Prepare a save of the images `references` name, in `format`.
    pub fn save(&self, references: &[String], format: ArchiveFormat) -> Result<Save, EngineError> {
        let mut images = Vec::new();
        for r in references {
            let img = self.get(r)?;
            images.push((parse_ref(&img.reference)?, img.manifest));
        }
        if images.is_empty() {
            return Err(EngineError::invalid("name at least one image to save"));
        }
        Ok(Save {
            content: self.registry.content().clone(),
            images,
            format,
        })
    }

    /// Load the images of an archive read from `src`, naming an unnamed one
    /// `name`; returns their records.
    pub async fn load<R>(&self, src: R, name: Option<&str>) -> Result<Vec<ImageRecord>, EngineError>
    where
        R: AsyncRead + Send + 'static,
    {
        let loaded = berth_image::load(src, self.registry.content())
            .await
            .map_err(archive_err)?;
        self.record_loaded(loaded, name).await
    }

    /// Import the root file system tarball read from `src` as the image
    /// `reference`, with Dockerfile-style `changes` (`CMD …`, `ENV …`) and
    /// a history `message`.
    pub async fn import<R>(
        &self,
        src: R,
        reference: &str,
        changes: &[String],
        message: Option<String>,
    ) -> Result<ImageRecord, EngineError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let reference = parse_ref(reference)?;
        let mut options = ImportOptions::default();
        for change in changes {
            berth_image::apply_change(&mut options.config, change).map_err(archive_err)?;
        }
        options.message = message;
        let loaded = berth_image::import(src, self.registry.content(), Some(&reference), options)
            .await
            .map_err(archive_err)?;
        let mut records = self
            .record_loaded(vec![loaded], Some(&reference.to_string()))
            .await?;
        records
            .pop()
            .ok_or_else(|| EngineError::internal(format!("importing {reference} recorded nothing")))
    }

    /// Record what an archive brought, naming unnamed images `name`.
    async fn record_loaded(
        &self,
        loaded: Vec<LoadedImage>,
        name: Option<&str>,
    ) -> Result<Vec<ImageRecord>, EngineError> {
        let unnamed = loaded.iter().filter(|l| l.reference.is_none()).count();
        if unnamed > 1 && name.is_some() {
            return Err(EngineError::invalid(
                "the archive holds several unnamed images; --name can name only one",
            ));
        }
        let mut out = Vec::new();
        for l in loaded {
            let reference = match (&l.reference, name) {
                (Some(r), _) => r.clone(),
                (None, Some(n)) => parse_ref(n)?.to_string(),
                (None, None) => {
                    return Err(EngineError::invalid(format!(
                        "the archive does not name image {} (its name is {:?}); give one with --name NAME:TAG",
                        l.manifest, l.ref_name
                    )));
                }
            };
            let config = Descriptor {
                media_type: if l.media_type == media_types::DOCKER_MANIFEST {
                    media_types::DOCKER_CONFIG.to_string()
                } else {
                    media_types::OCI_CONFIG.to_string()
                },
                digest: l.config.clone(),
                size: self
                    .registry
                    .content()
                    .stat(&l.config)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(0),
                artifact_type: None,
                annotations: None,
                platform: None,
                urls: None,
            };
            let record = store::record(
                self,
                NewImage {
                    reference,
                    digest: l.manifest.clone(),
                    media_type: l.media_type.clone(),
                    platform_manifest: None,
                    config,
                    layers: l.layers.clone(),
                    origin: None,
                },
            )
            .await?;
            out.push(record);
        }
        Ok(out)
    }
}
