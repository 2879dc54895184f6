//! The byte meter between the decompressor and the tar reader. The tar
//! crate reads PAX records and GNU long names whole into a `Vec` while it
//! looks for the next entry, so the only place to bound that memory is the
//! stream it reads from: while [`Gauge::headers`] is on, every byte counts
//! against [`Limits::max_header_bytes`], and every byte of the layer counts
//! against [`Limits::max_layer_bytes`]. Past a limit the read fails, and the
//! gauge remembers which limit it was so the caller can say so.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use crate::Limits;

/// Which limit a read ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exceeded {
    Header,
    Layer,
}

/// State shared by the [`Metered`] reader (owned by the tar archive) and
/// the applier that switches it between headers and data.
#[derive(Debug)]
pub(super) struct Gauge {
    limits: Limits,
    /// `Some(bytes read)` while the tar reader is between entries.
    headers: Cell<Option<u64>>,
    total: Cell<u64>,
    exceeded: Cell<Option<Exceeded>>,
}

impl Gauge {
    pub(super) fn new(limits: Limits) -> Rc<Self> {
        Rc::new(Gauge {
            limits,
            headers: Cell::new(None),
            total: Cell::new(0),
            exceeded: Cell::new(None),
        })
    }

    /// Count what follows as one entry's headers (`on`), or as data.
    pub(super) fn headers(&self, on: bool) {
        self.headers.set(on.then_some(0));
    }

    /// The limit a failed read ran into, if that is why it failed.
    pub(super) fn exceeded(&self) -> Option<Exceeded> {
        self.exceeded.get()
    }

    fn count(&self, n: usize) -> std::io::Result<()> {
        let n = n as u64;
        let total = self.total.get().saturating_add(n);
        self.total.set(total);
        if total > self.limits.max_layer_bytes {
            return Err(self.trip(Exceeded::Layer));
        }
        if let Some(used) = self.headers.get() {
            let used = used.saturating_add(n);
            self.headers.set(Some(used));
            if used > self.limits.max_header_bytes {
                return Err(self.trip(Exceeded::Header));
            }
        }
        Ok(())
    }

    fn trip(&self, what: Exceeded) -> std::io::Error {
        self.exceeded.set(Some(what));
        std::io::Error::other(match what {
            Exceeded::Header => "tar headers over the limit",
            Exceeded::Layer => "layer over the size limit",
        })
    }
}

/// A reader that reports every byte to its [`Gauge`].
pub(super) struct Metered<R> {
    inner: R,
    gauge: Rc<Gauge>,
}

impl<R: Read> Metered<R> {
    pub(super) fn new(inner: R, gauge: Rc<Gauge>) -> Self {
        Metered { inner, gauge }
    }

    pub(super) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Once over a limit, stay failed: the tar reader may retry.
        if self.gauge.exceeded().is_some() {
            return Err(std::io::Error::other("layer refused at a limit"));
        }
        let n = self.inner.read(buf)?;
        self.gauge.count(n)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn limits(header: u64, layer: u64) -> Limits {
        Limits {
            max_header_bytes: header,
            max_layer_bytes: layer,
            ..Limits::default()
        }
    }

    #[test]
    fn header_bytes_count_only_while_headers_are_on() {
        let gauge = Gauge::new(limits(10, 100));
        let mut r = Metered::new(&[0u8; 64][..], gauge.clone());
        let mut buf = [0u8; 8];
        r.read_exact(&mut buf).unwrap();
        gauge.headers(true);
        r.read_exact(&mut buf).unwrap();
        assert!(r.read_exact(&mut buf).is_err());
        assert_eq!(gauge.exceeded(), Some(Exceeded::Header));
        // Still refused afterwards, whatever the mode.
        gauge.headers(false);
        assert!(r.read(&mut buf).is_err());
    }

    #[test]
    fn the_layer_total_is_counted_in_both_modes() {
        let gauge = Gauge::new(limits(1000, 20));
        let mut r = Metered::new(&[0u8; 64][..], gauge.clone());
        let mut buf = [0u8; 16];
        r.read_exact(&mut buf).unwrap();
        gauge.headers(true);
        assert!(r.read_exact(&mut buf).is_err());
        assert_eq!(gauge.exceeded(), Some(Exceeded::Layer));
    }
}
