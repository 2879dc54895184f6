//! Which compression a layer uses, decided by its media type only: berth
//! never sniffs magic bytes, so a mislabelled blob fails loudly instead of
//! being applied under the wrong diffID.

use std::io::{BufRead, Read, Write};

use berth_oci::media_types;

use crate::LayerError;

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952); multi-member streams are accepted when reading.
    Gzip,
    /// zstd (RFC 8878).
    Zstd,
}

impl Compression {
    /// The compression of a layer of `media_type`, for OCI and Docker layer
    /// types, including the non-distributable (foreign) variants.
    pub fn from_media_type(media_type: &str) -> Result<Self, LayerError> {
        let c = match media_type {
            media_types::OCI_LAYER
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            media_types::OCI_LAYER_GZIP
            | media_types::DOCKER_LAYER_GZIP
            | media_types::DOCKER_FOREIGN_LAYER_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Compression::Gzip,
            media_types::OCI_LAYER_ZSTD
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            other => return Err(LayerError::UnsupportedMediaType(other.to_string())),
        };
        Ok(c)
    }

    /// The OCI media type of a layer compressed this way.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => media_types::OCI_LAYER,
            Compression::Gzip => media_types::OCI_LAYER_GZIP,
            Compression::Zstd => media_types::OCI_LAYER_ZSTD,
        }
    }

    pub(crate) fn decoder<'a, R: BufRead + 'a>(
        self,
        reader: R,
    ) -> Result<Box<dyn Read + 'a>, LayerError> {
        Ok(match self {
            Compression::None => Box::new(reader),
            // Multi-member: some tools concatenate gzip members, and Go's
            // reader (containerd, docker) accepts them.
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(reader).map_err(|source| {
                    LayerError::Stream {
                        where_: "at the zstd frame header".into(),
                        source,
                    }
                })?,
            ),
        })
    }
}

/// An encoder that must be told when the stream ends, so that trailers are
/// written and the inner writer handed back.
pub(crate) enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(compression: Compression, inner: W) -> std::io::Result<Self> {
        Ok(match compression {
            Compression::None => Encoder::None(inner),
            // Level 6 is gzip's default and what docker and containerd write;
            // the gzip header carries no mtime or name, so output is stable.
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(6),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(inner, 3)?),
        })
    }

    pub(crate) fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}
