//! Archives whose tar headers try to make `berth load` hold gigabytes: a
//! PAX header, a GNU long name and a GNU long link of hundreds of megabytes
//! before the archive's `manifest.json`. The tar reader would read each
//! whole into memory; `load` refuses it with the limit named, having read
//! little more than the limit; a `manifest.json` of the same size is
//! refused unread. The archive is streamed from a generator, so
//! the test holds no more than a block of it.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use berth_image::{ImageError, load};
use common::store;
use tokio::io::{AsyncRead, ReadBuf};

/// A tar header block: `kind` (a tar type flag), `name`, `size` bytes.
fn header(kind: u8, name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    for f in [108, 116] {
        h[f..f + 7].copy_from_slice(b"0000000");
    }
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// An extension header of `kind` with `size` bytes of `a`, then a small
/// `manifest.json` and the end of the archive, generated as it is read.
struct Bomb {
    head: Vec<u8>,
    fill: u64,
    tail: Vec<u8>,
    served: Arc<AtomicU64>,
}

impl Bomb {
    fn new(kind: u8, size: u64, served: Arc<AtomicU64>) -> Bomb {
        Bomb::named(kind, "././@LongLink", size, served)
    }

    fn named(kind: u8, name: &str, size: u64, served: Arc<AtomicU64>) -> Bomb {
        let pad = (512 - size % 512) % 512;
        let mut tail = vec![0u8; pad as usize];
        tail.extend_from_slice(&header(b'0', "manifest.json", 2));
        tail.extend_from_slice(b"[]");
        tail.resize(tail.len() + 510 + 1024, 0);
        Bomb {
            head: header(kind, name, size).to_vec(),
            fill: size,
            tail,
            served,
        }
    }
}

impl AsyncRead for Bomb {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let want = buf.remaining();
        let n = if !self.head.is_empty() {
            let n = want.min(self.head.len());
            buf.put_slice(&self.head[..n]);
            self.head.drain(..n);
            n
        } else if self.fill > 0 {
            let n = (want as u64).min(self.fill) as usize;
            buf.put_slice(&vec![b'a'; n]);
            self.fill -= n as u64;
            n
        } else {
            let n = want.min(self.tail.len());
            buf.put_slice(&self.tail[..n]);
            self.tail.drain(..n);
            n
        };
        self.served.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

const BOMB: u64 = 256 << 20;

async fn refused(kind: u8) {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store")).await;
    let served = Arc::new(AtomicU64::new(0));
    let err = load(Bomb::new(kind, BOMB, served.clone()), &s)
        .await
        .unwrap_err();
    let read = served.load(Ordering::Relaxed);
    eprintln!("refused after {read} bytes: {err}");
    assert!(
        matches!(err, ImageError::HeaderTooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("exceed 1048576 bytes"), "{err}");
    assert!(
        read < 4 << 20,
        "load read {read} bytes of a header bomb before refusing it"
    );
}

#[tokio::test]
async fn a_huge_pax_header_is_refused() {
    refused(b'x').await;
}

#[tokio::test]
async fn a_huge_gnu_long_name_is_refused() {
    refused(b'L').await;
}

#[tokio::test]
async fn a_huge_gnu_long_link_is_refused() {
    refused(b'K').await;
}

#[tokio::test]
async fn a_huge_manifest_json_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store")).await;
    let served = Arc::new(AtomicU64::new(0));
    let bomb = Bomb::named(b'0', "manifest.json", BOMB, served.clone());
    let err = load(bomb, &s).await.unwrap_err();
    assert!(
        matches!(&err, ImageError::TooLarge { what, .. } if what == "manifest.json"),
        "{err}"
    );
    assert!(served.load(Ordering::Relaxed) < 4 << 20);
}
