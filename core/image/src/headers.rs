//! A bound on the tar headers of an image archive. The tar reader reads an
//! entry's PAX records and GNU long name whole into memory while it looks
//! for the entry, so a few kilobytes of gzip could make berthd allocate
//! gigabytes. [`Metered`] counts the bytes read while [`HeaderGauge`] is on
//! (between entries) and fails the read past the limit; the gauge then
//! tells the caller why the archive stopped.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Bytes of headers (header blocks, PAX records, GNU long name and long
/// link) read for one archive entry; Go's archive/tar allows 1 MiB per
/// extension and real archives stay far below.
pub(crate) const HEADER_LIMIT: u64 = 1 << 20;

/// Whether the tar reader is between entries, and how much it read there.
#[derive(Debug)]
pub(crate) struct HeaderGauge {
    limit: u64,
    on: AtomicBool,
    used: AtomicU64,
    exceeded: AtomicBool,
}

impl HeaderGauge {
    pub(crate) fn new(limit: u64) -> Arc<Self> {
        Arc::new(HeaderGauge {
            limit,
            on: AtomicBool::new(false),
            used: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        })
    }

    /// Count what follows as one entry's headers (`on`), or as data.
    pub(crate) fn headers(&self, on: bool) {
        self.used.store(0, Ordering::Relaxed);
        self.on.store(on, Ordering::Relaxed);
    }

    /// Whether a read failed because the headers went over the limit.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    fn count(&self, n: usize) -> std::io::Result<()> {
        if !self.on.load(Ordering::Relaxed) {
            return Ok(());
        }
        let used = self.used.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if used > self.limit {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("tar headers over the limit"));
        }
        Ok(())
    }
}

/// A reader that reports what it yields to its [`HeaderGauge`].
pub(crate) struct Metered<R> {
    inner: R,
    gauge: Arc<HeaderGauge>,
}

impl<R> Metered<R> {
    pub(crate) fn new(inner: R, gauge: Arc<HeaderGauge>) -> Self {
        Metered { inner, gauge }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Metered<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.gauge.exceeded() {
            return Poll::Ready(Err(std::io::Error::other("archive refused at a limit")));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(this.gauge.count(buf.filled().len() - before)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn only_bytes_read_between_entries_count() {
        let gauge = HeaderGauge::new(10);
        let mut r = Metered::new(&[0u8; 64][..], gauge.clone());
        let mut buf = [0u8; 8];
        r.read_exact(&mut buf).await.unwrap();
        gauge.headers(true);
        r.read_exact(&mut buf).await.unwrap();
        assert!(r.read_exact(&mut buf).await.is_err());
        assert!(gauge.exceeded());
        gauge.headers(false);
        assert!(r.read(&mut buf).await.is_err(), "stays refused");
    }
}
