#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Layers that try to make the applier hold or write without bound: PAX
//! records, GNU long names and long links of hundreds of megabytes (which
//! the tar reader would read whole into memory), a PAX global header past
//! the limit, a layer larger than its byte cap and one with too many
//! entries. Each is refused with the limit named, before the applier has
//! read much past that limit, and the fresh directory is gone.
//!
//! The layers are streamed from a generator, so the tests themselves hold
//! no more than a block of them.

mod common;

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::Read;
use std::rc::Rc;

use berth_layer::{ApplyOptions, LayerError, Limits, apply_fresh};
use berth_oci::media_types::OCI_LAYER;
use common::RawTar;
use tar::{EntryType, Header};

/// Pieces of a tar stream: literal bytes, or a byte repeated.
enum Part {
    Bytes(Vec<u8>),
    Repeat(u8, u64),
}

/// A tar produced on the fly, counting how much the applier took.
struct Stream {
    parts: VecDeque<Part>,
    served: Rc<Cell<u64>>,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = loop {
            match self.parts.front_mut() {
                None => break 0,
                Some(Part::Bytes(b)) if b.is_empty() => {
                    self.parts.pop_front();
                }
                Some(Part::Bytes(b)) => {
                    let n = b.len().min(buf.len());
                    buf[..n].copy_from_slice(&b[..n]);
                    b.drain(..n);
                    break n;
                }
                Some(Part::Repeat(_, 0)) => {
                    self.parts.pop_front();
                }
                Some(Part::Repeat(byte, left)) => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    buf[..n].fill(*byte);
                    *left -= n as u64;
                    break n;
                }
            }
        };
        self.served.set(self.served.get() + n as u64);
        Ok(n)
    }
}

/// A header block of `kind` named `name`, declaring `size` bytes.
fn header(kind: EntryType, name: &str, size: u64) -> Vec<u8> {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// An extension entry of `kind` whose content is `size` bytes of `fill`
/// (padded to a block), then one small file and the end of the tar.
fn bomb(kind: EntryType, size: u64, fill: u8) -> Vec<Part> {
    let pad = (512 - size % 512) % 512;
    let mut tail = header(EntryType::Regular, "after", 2);
    tail.extend_from_slice(b"ok");
    tail.resize(tail.len() + 510, 0);
    tail.resize(tail.len() + 1024, 0);
    vec![
        Part::Bytes(header(kind, "././@LongLink", size)),
        Part::Repeat(fill, size),
        Part::Repeat(0, pad),
        Part::Bytes(tail),
    ]
}

/// Applies the streamed `parts` with `limits` into a fresh directory,
/// expecting a refusal; returns it and how many bytes were read.
fn refused(parts: Vec<Part>, limits: Limits) -> (LayerError, u64) {
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("snap");
    let served = Rc::new(Cell::new(0));
    let stream = Stream {
        parts: parts.into(),
        served: served.clone(),
    };
    let opts = ApplyOptions {
        limits,
        ..ApplyOptions::default()
    };
    let err = apply_fresh(&target, OCI_LAYER, stream, None, &opts).unwrap_err();
    assert!(!target.exists(), "the refused layer left {target:?}");
    eprintln!("refused after {} bytes: {err}", served.get());
    (err, served.get())
}

/// Far more than the limit; far less than what would hurt if read whole.
const BOMB: u64 = 256 << 20;
/// The applier's buffers (decompressor and tar) may read this far ahead.
const SLACK: u64 = 2 << 20;

fn assert_header_refusal(err: &LayerError, served: u64) {
    let limit = Limits::default().max_header_bytes;
    assert!(
        matches!(err, LayerError::HeaderTooLarge { limit: l, .. } if *l == limit),
        "{err}"
    );
    assert!(err.to_string().contains("max_header_bytes"), "{err}");
    assert!(
        served < limit + SLACK,
        "the applier read {served} bytes of a header bomb before refusing it"
    );
}

#[test]
fn a_huge_pax_header_is_refused_without_reading_it() {
    // One PAX record claiming the whole entry: "268435456 comment=aaa…".
    let (err, served) = refused(bomb(EntryType::XHeader, BOMB, b'a'), Limits::default());
    assert_header_refusal(&err, served);
}

#[test]
fn a_huge_gnu_long_name_is_refused_without_reading_it() {
    let (err, served) = refused(bomb(EntryType::GNULongName, BOMB, b'a'), Limits::default());
    assert_header_refusal(&err, served);
}

#[test]
fn a_huge_gnu_long_link_is_refused_without_reading_it() {
    let (err, served) = refused(bomb(EntryType::GNULongLink, BOMB, b'a'), Limits::default());
    assert_header_refusal(&err, served);
}

#[test]
fn a_pax_global_header_over_the_limit_is_refused() {
    let (err, served) = refused(
        bomb(EntryType::XGlobalHeader, 2 << 20, b'a'),
        Limits::default(),
    );
    assert!(matches!(err, LayerError::HeaderTooLarge { .. }), "{err}");
    assert!(served < (2 << 20) + SLACK);
}

#[test]
fn a_layer_over_its_byte_cap_is_refused_while_streaming() {
    let limits = Limits {
        max_layer_bytes: 1 << 20,
        ..Limits::default()
    };
    let size = 64u64 << 20;
    let parts = vec![
        Part::Bytes(header(EntryType::Regular, "big", size)),
        Part::Repeat(7, size),
        Part::Repeat(0, 1024),
    ];
    let (err, served) = refused(parts, limits);
    assert!(
        matches!(err, LayerError::LayerTooLarge { limit } if limit == 1 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("max_layer_bytes"), "{err}");
    assert!(served < (1 << 20) + SLACK, "read {served} bytes");
}

#[test]
fn a_layer_with_too_many_entries_is_refused() {
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let mut t = RawTar::new();
    for i in 0..11 {
        t.file(&format!("f{i}"), b"x");
    }
    let (err, _) = refused(vec![Part::Bytes(t.finish())], limits);
    assert!(
        matches!(err, LayerError::TooManyEntries { limit: 10 }),
        "{err}"
    );
    assert!(err.to_string().contains("max_entries"), "{err}");
}

#[test]
fn a_path_longer_than_path_max_is_refused() {
    let name = "d/".repeat(2500) + "f";
    let mut parts = vec![
        Part::Bytes(header(
            EntryType::GNULongName,
            "././@LongLink",
            name.len() as u64 + 1,
        )),
        Part::Bytes(name.clone().into_bytes()),
    ];
    let mut rest = vec![0u8; (512 - (name.len() + 1) % 512) % 512 + 1];
    rest.extend(header(EntryType::Regular, "short", 0));
    rest.resize(rest.len() + 1024, 0);
    parts.push(Part::Bytes(rest));
    let (err, _) = refused(parts, Limits::default());
    assert!(
        matches!(&err, LayerError::UnsafePath { reason, .. } if reason.contains("PATH_MAX")),
        "{err}"
    );
    // The refused name is not repeated whole to the user.
    assert!(err.to_string().len() < 1000, "{err}");
}

fn header_fields(mut h: Header) -> Header {
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

#[test]
fn headers_within_the_limits_still_apply() {
    // A 400-byte name and 600 KiB of PAX records: large, but inside the limit.
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("snap");
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("{}/{}", "a".repeat(200), "b".repeat(200));
    let mut h = header_fields(Header::new_gnu());
    h.set_size(2);
    b.append_data(&mut h, &long, &b"hi"[..]).unwrap();
    let value = vec![b'v'; 600 << 10];
    b.append_pax_extensions([("comment", &value[..])]).unwrap();
    let mut h = header_fields(Header::new_ustar());
    h.set_size(3);
    b.append_data(&mut h, "x", &b"pax"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let stats = apply_fresh(
        &target,
        OCI_LAYER,
        &layer[..],
        None,
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(stats.entries, 2);
    assert_eq!(std::fs::read(target.join(&long)).unwrap(), b"hi");
    assert_eq!(std::fs::read(target.join("x")).unwrap(), b"pax");
}
