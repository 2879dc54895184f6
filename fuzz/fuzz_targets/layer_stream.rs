//! The layer applier on generated tar streams whose entries declare any
//! size: the input is a list of (entry type, size, fill byte) and the
//! stream is produced as it is read, so one small input can describe a
//! PAX header, GNU long name or file of gigabytes. With the fuzzer's 1 GiB
//! memory limit this finds anything that holds an entry's bytes in memory;
//! the limits (64 KiB of headers, 8 MiB of layer) keep each run short.
#![no_main]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_layer::{ApplyOptions, Limits, WhiteoutMode, apply_fresh};
use berth_oci::media_types::OCI_LAYER;
use libfuzzer_sys::fuzz_target;
use tar::{EntryType, Header};

const KINDS: [EntryType; 11] = [
    EntryType::Regular,
    EntryType::Directory,
    EntryType::Symlink,
    EntryType::Link,
    EntryType::XHeader,
    EntryType::XGlobalHeader,
    EntryType::GNULongName,
    EntryType::GNULongLink,
    EntryType::GNUSparse,
    EntryType::Fifo,
    EntryType::Char,
];

/// One entry: its header block, then `size` bytes of `fill` and padding.
struct Part {
    header: [u8; 512],
    size: u64,
    fill: u8,
}

/// The tar, produced as it is read.
struct Stream {
    parts: Vec<Part>,
    at: usize,
    /// Bytes of the current part already produced.
    done: u64,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(part) = self.parts.get(self.at) else {
                // The end of the tar: two zero blocks, then nothing.
                let end = 1024u64.saturating_sub(self.done);
                let n = end.min(buf.len() as u64) as usize;
                buf[..n].fill(0);
                self.done += n as u64;
                return Ok(n);
            };
            let padded = part.size.div_ceil(512) * 512;
            let total = 512 + padded;
            if self.done >= total {
                self.at += 1;
                self.done = 0;
                continue;
            }
            let n = if self.done < 512 {
                let from = self.done as usize;
                let n = (512 - from).min(buf.len());
                buf[..n].copy_from_slice(&part.header[from..from + n]);
                n
            } else {
                let n = (total - self.done).min(buf.len() as u64) as usize;
                let data_left = (512 + part.size).saturating_sub(self.done) as usize;
                let data = n.min(data_left);
                buf[..data].fill(part.fill);
                buf[data..n].fill(0);
                n
            };
            self.done += n as u64;
            return Ok(n);
        }
    }
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("berth-fuzz-stream-")
            .tempdir()
            .expect("a scratch directory")
            .keep()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = Vec::new();
    for (i, op) in data.chunks_exact(6).take(64).enumerate() {
        let kind = KINDS[usize::from(op[0]) % KINDS.len()];
        let base = u64::from(u32::from_le_bytes([op[1], op[2], op[3], op[4]]));
        let size = (base << (op[5] % 24)).min(1 << 36);
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        let _ = h.set_path(format!("f{}", i % 8));
        let _ = h.set_link_name(format!("f{}", (i + 1) % 8));
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h.set_cksum();
        let mut header = [0u8; 512];
        header.copy_from_slice(h.as_bytes());
        parts.push(Part {
            header,
            size,
            fill: op[5],
        });
    }
    let stream = Stream {
        parts,
        at: 0,
        done: 0,
    };
    let target = scratch().join("snap");
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        max_file_size: 1 << 20,
        preserve_ownership: true,
        limits: Limits {
            max_header_bytes: 64 << 10,
            max_layer_bytes: 8 << 20,
            max_entries: 10_000,
        },
    };
    let _ = apply_fresh(&target, OCI_LAYER, stream, None, &opts);
    if target.exists() {
        std::fs::remove_dir_all(&target).expect("removing the applied layer");
    }
});
