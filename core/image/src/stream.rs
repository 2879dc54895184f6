//! Streaming helpers: compression sniffing and decoding, and a reader that
//! hashes and counts what passes through it. Nothing here buffers more than
//! a read's worth of bytes.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use berth_oci::{Algorithm, Digest, Hasher};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader, ReadBuf};

/// A boxed byte stream, so callers need not name decoder types.
pub(crate) type BoxRead = Pin<Box<dyn AsyncRead + Send>>;

/// How a byte stream is compressed, told by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Sniff the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// What a layer media type says, if it says anything.
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") || media_type.ends_with("diff.tar") {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// Decode `src` according to its magic bytes. Gzip streams may have several
/// members (pigz and some tools write them), so all are read.
pub(crate) async fn decode_sniffed<R>(src: R) -> std::io::Result<BoxRead>
where
    R: AsyncRead + Send + 'static,
{
    let src: BoxRead = Box::pin(src);
    let mut buf = BufReader::with_capacity(256 * 1024, src);
    let kind = Compression::sniff(Pin::new(&mut buf).fill_buf().await?);
    Ok(decode(buf, kind))
}

/// Decode `src`, known to be compressed as `kind`.
pub(crate) fn decode<R>(src: R, kind: Compression) -> BoxRead
where
    R: AsyncBufRead + Send + 'static,
{
    match kind {
        Compression::None => Box::pin(src),
        Compression::Gzip => {
            let mut d = GzipDecoder::new(src);
            d.multiple_members(true);
            Box::pin(d)
        }
        Compression::Zstd => {
            let mut d = ZstdDecoder::new(src);
            d.multiple_members(true);
            Box::pin(d)
        }
    }
}

/// Hashes (sha256) and counts every byte read through it.
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Algorithm::Sha256.hasher(),
            count: 0,
        }
    }

    /// Digest and length of what was read so far.
    pub(crate) fn finish(&self) -> (Digest, u64) {
        (self.hasher.clone().finish(), self.count)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let new = &buf.filled()[before..];
            this.hasher.update(new);
            this.count += new.len() as u64;
        }
        res
    }
}

/// Hash and count everything `src` yields, discarding the bytes.
pub(crate) async fn digest_of<R: AsyncRead + Unpin>(src: R) -> std::io::Result<(Digest, u64)> {
    let mut h = HashReader::new(src);
    tokio::io::copy(&mut h, &mut tokio::io::sink()).await?;
    Ok(h.finish())
}
