//! Archives whose tar headers try to make `berth load` hold gigabytes: a
//! PAX header, a GNU long name and a GNU long link of hundreds of megabytes
//! before the archive's `manifest.json`. The tar reader would read each
//! whole into memory; `load` refuses it with the limit named, having read
//! little more than the limit; a `manifest.json` of the same size is
//! refused unread. Then archives that stay under that bound entry by entry
//! but keep what `load` remembers of each (its path and link target)
//! growing: a name of a megabyte, a hundred thousand entries, thousands of
//! links with names of 4000 bytes; each is refused early, with the bound
//! named. The archives are streamed from generators, so the test holds no
//! more than an entry of them.

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

/// `count` entries made by `entry(i)`, then a small `manifest.json` and the
/// end of the archive, generated as they are read.
struct Entries<F> {
    entry: F,
    next: u64,
    count: u64,
    buf: Vec<u8>,
    at: usize,
    tail: bool,
    served: Arc<AtomicU64>,
}

impl<F: FnMut(u64) -> Vec<u8>> Entries<F> {
    fn new(count: u64, entry: F, served: Arc<AtomicU64>) -> Self {
        Entries {
            entry,
            next: 0,
            count,
            buf: Vec::new(),
            at: 0,
            tail: false,
            served,
        }
    }
}

impl<F: FnMut(u64) -> Vec<u8> + Unpin> AsyncRead for Entries<F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at == this.buf.len() {
            this.at = 0;
            if this.next < this.count {
                this.buf = (this.entry)(this.next);
                this.next += 1;
            } else if !this.tail {
                this.tail = true;
                this.buf = header(b'0', "manifest.json", 2).to_vec();
                this.buf.extend_from_slice(b"[]");
                this.buf.resize(this.buf.len() + 510 + 1024, 0);
            } else {
                this.buf.clear();
                return Poll::Ready(Ok(()));
            }
        }
        let n = buf.remaining().min(this.buf.len() - this.at);
        buf.put_slice(&this.buf[this.at..this.at + n]);
        this.at += n;
        this.served.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

/// A GNU long name (`L`) or long link (`K`) record holding `value`.
fn long(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = header(kind, "././@LongLink", value.len() as u64 + 1).to_vec();
    out.extend_from_slice(value);
    out.push(0);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

/// A symlink entry named `name`, pointing at `target` (both through GNU
/// long records, whatever their length).
fn symlink(name: &[u8], target: &[u8]) -> Vec<u8> {
    let mut out = long(b'L', name);
    out.extend(long(b'K', target));
    out.extend_from_slice(&header(b'2', "link", 0));
    out
}

#[tokio::test]
async fn a_megabyte_entry_name_is_refused_and_not_repeated() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store")).await;
    let served = Arc::new(AtomicU64::new(0));
    // Under the 1 MiB bound on one entry's headers, so only the path
    // check stops it.
    let name = vec![b'n'; 1_000_000];
    let archive = Entries::new(1, move |_| symlink(&name, b"target"), served.clone());
    let err = load(archive, &s).await.unwrap_err();
    let message = err.to_string();
    eprintln!("{message}");
    assert!(
        matches!(&err, ImageError::UnsafePath { reason, .. } if reason.contains("PATH_MAX")),
        "{message}"
    );
    assert!(
        message.len() < 1024 && message.contains("(1000000 bytes)"),
        "the refused name is repeated whole: {} bytes",
        message.len()
    );
}

#[tokio::test]
async fn a_link_target_longer_than_path_max_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store")).await;
    let served = Arc::new(AtomicU64::new(0));
    let target = vec![b't'; 5000];
    let archive = Entries::new(1, move |_| symlink(b"link", &target), served);
    let err = load(archive, &s).await.unwrap_err();
    assert!(
        matches!(&err, ImageError::UnsafePath { reason, .. } if reason.contains("PATH_MAX")),
        "{err}"
    );
    assert!(err.to_string().len() < 1024, "{err}");
}

#[tokio::test]
async fn an_archive_of_too_many_entries_is_refused_early() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store")).await;
    let served = Arc::new(AtomicU64::new(0));
    // Directories: nothing of them is kept, yet each is an entry.
    let count = 100_000;
    let dirs = Entries::new(
        count,
        |i| header(b'5', &format!("d{i}/"), 0).to_vec(),
        served.clone(),
    );
    let err = load(dirs, &s).await.unwrap_err();
    let read = served.load(Ordering::Relaxed);
    eprintln!("refused after {read} bytes: {err}");
    assert!(
        matches!(err, ImageError::TooManyEntries { limit } if limit == 65536),
        "{err}"
    );
    assert!(err.to_string().contains("65536 entries"), "{err}");
    assert!(read < 64 << 20, "load read {read} bytes before refusing");
}

#[tokio::test]
async fn links_with_long_names_are_refused_before_their_names_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store")).await;
    let served = Arc::new(AtomicU64::new(0));
    // 30,000 links with a 4000-byte name and target each: 240 MB of names
    // were kept whole; each entry alone is well within every other bound.
    let fill = vec![b'a'; 3990];
    let links = Entries::new(
        30_000,
        move |i| {
            let mut name = format!("{i:08}/").into_bytes();
            name.extend_from_slice(&fill);
            symlink(&name, &fill)
        },
        served.clone(),
    );
    let err = load(links, &s).await.unwrap_err();
    let read = served.load(Ordering::Relaxed);
    eprintln!("refused after {read} bytes: {err}");
    assert!(
        matches!(err, ImageError::NamesTooLarge { limit } if limit == 16 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("16777216 bytes"), "{err}");
    assert!(read < 32 << 20, "load read {read} bytes before refusing");
}
