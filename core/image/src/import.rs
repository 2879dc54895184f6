//! `berth import ROOTFS.tar[.gz] [NAME[:TAG]]`: make a one-layer image of a
//! root filesystem tarball, as `docker import` does.
//!
//! One streaming pass: the input is decompressed if it is gzip or zstd
//! (sniffed by magic bytes), hashed for the diff ID, gzip-compressed again
//! and hashed for the layer digest while it is appended to a content-store
//! ingest, which is then committed under that digest. Config and manifest
//! are small and go in with `put_bytes`.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_content::{ContentError, ContentStore};
use berth_oci::{Reference, media_types};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::ImageError;
use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::load::{DockerManifest, LoadedImage, descriptor};
use crate::platform::Platform;
use crate::stream::{HashReader, decode_sniffed};

/// How the imported image is described.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The container config (Cmd, Env, WorkingDir, …); build it with
    /// [`apply_change`](crate::apply_change) from `--change` strings.
    pub config: ContainerConfig,
    /// Defaults to the host's platform.
    pub platform: Option<Platform>,
    /// Defaults to now; set it for reproducible images.
    pub created: Option<SystemTime>,
    /// Goes into the history entry (`docker import --message`).
    pub message: Option<String>,
}

/// Import the root filesystem tar (plain, gzip or zstd) read from `src` as
/// a one-layer OCI image named `reference` (if any).
pub async fn import<R>(
    src: R,
    store: &ContentStore,
    reference: Option<&Reference>,
    options: ImportOptions,
) -> Result<LoadedImage, ImageError>
where
    R: AsyncRead + Send + 'static,
{
    let decoded = decode_sniffed(src).await.map_err(ImageError::Source)?;
    let id = format!("import-{}", uuid::Uuid::new_v4().simple());
    let mut ingest = store.ingest(&id).await?;
    // The compressor runs on the write side, fed by a plain copy loop that
    // never flushes it: a flush (which tokio's `copy` and the read-side
    // encoder do whenever the input is not ready) ends a deflate block,
    // making the layer bigger and its digest depend on I/O timing.
    let (pipe_in, pipe_out) = tokio::io::duplex(PIPE);
    // The reader owns its end of the pipe, so if the store fails the end is
    // dropped and the compressor stops with a broken pipe instead of waiting.
    let store_side = async {
        let mut compressed = HashReader::new(pipe_out);
        let appended = ingest.append(&mut compressed).await;
        (appended, compressed.finish())
    };
    let (produced, (appended, (layer, layer_size))) =
        tokio::join!(compress(decoded, pipe_in), store_side);
    let committed = match (produced, appended) {
        (Err(e), _) => Err(ImageError::Source(e)),
        (Ok(_), Err(ContentError::Source(io))) => Err(ImageError::Source(io)),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok(diff), Ok(_)) => ingest
            .commit(&layer, Some(layer_size))
            .await
            .map(|_| diff)
            .map_err(ImageError::from),
    };
    let (diff_id, tar_size) = match committed {
        Ok(d) => d,
        Err(e) => {
            let _ = store.remove_ingest(&id).await;
            return Err(e);
        }
    };
    tracing::info!(%layer, %diff_id, tar_size, layer_size, "imported root filesystem layer");

    let created = rfc3339(options.created.unwrap_or_else(SystemTime::now));
    let platform = options.platform.unwrap_or_else(Platform::host);
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: Some(options.config),
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("berth import".to_string()),
            comment: options.message,
            ..History::default()
        }],
    };
    let config_body = serde_json::to_vec(&config).map_err(ImageError::json("image config"))?;
    let config_digest = store.put_bytes(&config_body).await?;
    let layers = vec![descriptor(media_types::OCI_LAYER_GZIP, layer, layer_size)];
    let manifest = DockerManifest {
        schema_version: 2,
        media_type: media_types::OCI_MANIFEST,
        config: descriptor(
            media_types::OCI_CONFIG,
            config_digest.clone(),
            config_body.len() as u64,
        ),
        layers: layers.clone(),
    };
    let body = serde_json::to_vec(&manifest).map_err(ImageError::json("image manifest"))?;
    let manifest_digest = store.put_bytes(&body).await?;
    Ok(LoadedImage {
        reference: reference.map(|r| r.to_string()),
        ref_name: reference.map(|r| r.to_string()),
        manifest: manifest_digest,
        media_type: media_types::OCI_MANIFEST.to_string(),
        config: config_digest,
        layers,
        size: config_body.len() as u64 + layer_size,
    })
}

/// The pipe between compressor and ingest; also the copy loop's chunk size.
const PIPE: usize = 256 * 1024;

/// Gzip `src` into `dst`, returning the digest and size of the uncompressed
/// bytes (the diff ID). `dst` is shut down at the end, which ends the pipe.
///
/// The compressor runs synchronously on a blocking thread and is always fed
/// whole `PIPE`-sized chunks: some deflate back ends (zlib-rs) emit different
/// bytes for different input splits, and an async encoder's splits follow
/// I/O timing — the same tar must always give the same layer digest.
async fn compress<R, W>(src: R, dst: W) -> std::io::Result<(berth_oci::Digest, u64)>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    use std::io::{Read, Write};
    let mut reader = tokio_util::io::SyncIoBridge::new(src);
    let writer = tokio_util::io::SyncIoBridge::new(dst);
    tokio::task::spawn_blocking(move || {
        let mut hasher = berth_oci::Algorithm::Sha256.hasher();
        let mut size = 0u64;
        let mut gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
        let mut buf = vec![0u8; PIPE];
        loop {
            let mut n = 0;
            while n < buf.len() {
                match reader.read(&mut buf[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            gz.write_all(&buf[..n])?;
            if n < buf.len() {
                break;
            }
        }
        let mut writer = gz.finish()?;
        writer.shutdown()?;
        Ok((hasher.finish(), size))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `2024-05-01T12:00:00Z`: whole seconds, UTC, as image configs spell it.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days: proleptic Gregorian, no tables.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(946_684_800)),
            "2000-01-01T00:00:00Z"
        );
        // 2024-02-29 (leap day) 13:14:15
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_212_455)),
            "2024-02-29T13:14:15Z"
        );
    }
}
