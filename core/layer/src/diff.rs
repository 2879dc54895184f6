//! Producing a layer from an overlayfs upper directory: one sorted walk,
//! written straight into a tar that is hashed (diffID), compressed and
//! hashed again (blob digest) on its way to the caller's writer.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use berth_oci::{Algorithm, Digest};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tar::{EntryType, Header};

use crate::error::errno;
use crate::hashio::HashingWriter;
use crate::root;
use crate::{Compression, LayerError};

const BUF_SIZE: usize = 256 * 1024;

/// What a [`diff`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffStats {
    /// Digest of the uncompressed tar: the image config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Digest of the bytes written to `out`: the manifest's layer digest.
    pub digest: Digest,
    /// Bytes written to `out`.
    pub size: u64,
    /// Bytes of uncompressed tar.
    pub uncompressed_size: u64,
    /// The OCI media type of what was written.
    pub media_type: &'static str,
    /// Tar entries written (PAX headers not counted).
    pub entries: u64,
}

/// Write the changes recorded in the overlayfs upper directory `upper` as a
/// layer to `out`, compressed with `compression`.
///
/// Character devices 0/0 become `.wh.NAME` whiteouts, directories with
/// `trusted.overlay.opaque=y` get a `.wh..wh..opq` entry, files sharing an
/// inode become hard links, and extended attributes become PAX
/// `SCHILY.xattr.*` records. Entries are sorted and header fields carry only
/// file metadata (no user names, no atime), so the same tree always gives
/// the same digests. The upper directory must not change meanwhile
/// (unmounted, or its container stopped).
pub fn diff<W: Write>(
    upper: &Path,
    compression: Compression,
    out: W,
) -> Result<DiffStats, LayerError> {
    let root = root::Root::open(upper)?;
    let blob = HashingWriter::new(out, Algorithm::Sha256.hasher());
    let encoder = crate::compression::Encoder::new(compression, blob)
        .map_err(LayerError::io("starting the compressor for", upper))?;
    let tar_stream = HashingWriter::new(encoder, Algorithm::Sha256.hasher());
    let mut w = Walker {
        upper,
        builder: tar::Builder::new(BufWriter::with_capacity(BUF_SIZE, tar_stream)),
        links: HashMap::new(),
        entries: 0,
    };
    let mut prefix = Vec::new();
    w.dir(root.fd(), &mut prefix)?;

    let write_err = LayerError::io("writing layer of", upper);
    let buffered = w.builder.into_inner().map_err(write_err)?;
    let tar_stream = buffered
        .into_inner()
        .map_err(|e| LayerError::io("writing layer of", upper)(e.into_error()))?;
    let (encoder, diff_id, uncompressed_size) = tar_stream.finish();
    let blob = encoder
        .finish()
        .map_err(LayerError::io("finishing compression of", upper))?;
    let (mut out, digest, size) = blob.finish();
    out.flush()
        .map_err(LayerError::io("flushing layer of", upper))?;
    Ok(DiffStats {
        diff_id,
        digest,
        size,
        uncompressed_size,
        media_type: compression.oci_media_type(),
        entries: w.entries,
    })
}

struct Walker<'a, W: Write> {
    upper: &'a Path,
    builder: tar::Builder<W>,
    /// First path seen for each multiply-linked inode.
    links: HashMap<(u64, u64), Vec<u8>>,
    entries: u64,
}

/// The parts of `stat` a layer records, in portable widths.
struct Stat {
    ft: FileType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime_sec: i64,
    mtime_nsec: u32,
    rdev: u64,
    nlink: u64,
    dev: u64,
    ino: u64,
}

#[allow(
    clippy::unnecessary_cast,
    reason = "stat field widths differ between architectures"
)]
fn stat_at(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<Stat> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
    Ok(Stat {
        ft: FileType::from_raw_mode(st.st_mode),
        mode: (st.st_mode as u32) & 0o7777,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        size: st.st_size as u64,
        mtime_sec: st.st_mtime as i64,
        mtime_nsec: st.st_mtime_nsec as u32,
        rdev: st.st_rdev as u64,
        nlink: st.st_nlink as u64,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
    })
}

impl<W: Write> Walker<'_, W> {
    fn err(
        &self,
        op: &'static str,
        path: &[u8],
    ) -> impl FnOnce(std::io::Error) -> LayerError + use<W> {
        LayerError::io(
            op,
            self.upper.join(std::ffi::OsStr::from_bytes_compat(path)),
        )
    }

    /// Emit every child of `dir` (at `prefix`), depth first, sorted by name.
    fn dir(&mut self, dir: BorrowedFd<'_>, prefix: &mut Vec<u8>) -> Result<(), LayerError> {
        let names = root::list_dir(dir).map_err(self.err("listing", prefix))?;
        for name in names {
            let len = prefix.len();
            if len > 0 {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(&name);
            self.child(dir, &name, prefix)?;
            prefix.truncate(len);
        }
        Ok(())
    }

    fn child(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        let st = stat_at(dir, name).map_err(self.err("inspecting", path))?;
        if st.ft == FileType::CharacterDevice && st.rdev == 0 {
            // An overlay whiteout; often a hard link to a shared whiteout
            // inode, which must not become a tar hard link.
            let (parent, base) = root::parent_and_name(path);
            let mut wh = parent.to_vec();
            if !wh.is_empty() {
                wh.push(b'/');
            }
            wh.extend_from_slice(b".wh.");
            wh.extend_from_slice(base);
            let h = header(EntryType::Regular, &st, 0);
            return self.append(&wh, h, &st, &[], None, std::io::empty());
        }

        let opened: Option<OwnedFd> = match st.ft {
            FileType::Directory | FileType::RegularFile => {
                let flags = if st.ft == FileType::Directory {
                    OFlags::DIRECTORY
                } else {
                    OFlags::empty()
                };
                Some(
                    rustix::fs::openat(
                        dir,
                        name,
                        flags | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| self.err("opening", path)(errno(e)))?,
                )
            }
            _ => None,
        };
        let xattrs = match &opened {
            Some(fd) => read_xattrs_fd(fd.as_fd()),
            None => read_xattrs_path(&root::proc_path(dir, name)),
        }
        .map_err(self.err("reading extended attributes of", path))?;
        let mut opaque = false;
        let mut kept = Vec::with_capacity(xattrs.len());
        for (k, v) in xattrs {
            if let Some(ovl) = k.strip_prefix(b"trusted.overlay.") {
                match ovl {
                    b"opaque" => opaque = v == b"y",
                    b"redirect" => return Err(self.unsupported(path, "redirect_dir")),
                    b"metacopy" => return Err(self.unsupported(path, "metacopy")),
                    // origin, impure, nlink, upper...: overlay bookkeeping.
                    _ => {}
                }
                continue;
            }
            kept.push((k, v));
        }

        match st.ft {
            FileType::Directory => {
                let h = header(EntryType::Directory, &st, 0);
                path.push(b'/');
                self.append(path, h, &st, &kept, None, std::io::empty())?;
                path.pop();
                if opaque {
                    let mut opq = path.clone();
                    opq.extend_from_slice(b"/.wh..wh..opq");
                    let marker = Stat {
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        size: 0,
                        ..st
                    };
                    let h = header(EntryType::Regular, &marker, 0);
                    self.append(&opq, h, &marker, &[], None, std::io::empty())?;
                }
                let Some(fd) = opened else { return Ok(()) };
                self.dir(fd.as_fd(), path)
            }
            FileType::RegularFile => {
                if let Some(first) = self.first_link(&st, path) {
                    let h = header(EntryType::Link, &st, 0);
                    return self.append(path, h, &st, &[], Some(&first), std::io::empty());
                }
                let Some(fd) = opened else { return Ok(()) };
                let data = ExactReader {
                    inner: File::from(fd).take(st.size),
                    left: st.size,
                };
                let h = header(EntryType::Regular, &st, st.size);
                self.append(path, h, &st, &kept, None, data)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())
                    .map_err(|e| self.err("reading symlink", path)(errno(e)))?;
                let h = header(EntryType::Symlink, &st, 0);
                self.append(
                    path,
                    h,
                    &st,
                    &kept,
                    Some(target.as_bytes()),
                    std::io::empty(),
                )
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                if let Some(first) = self.first_link(&st, path) {
                    let h = header(EntryType::Link, &st, 0);
                    return self.append(path, h, &st, &[], Some(&first), std::io::empty());
                }
                let kind = match st.ft {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = header(kind, &st, 0);
                if st.ft != FileType::Fifo {
                    let set = h
                        .set_device_major(rustix::fs::major(st.rdev))
                        .and_then(|()| h.set_device_minor(rustix::fs::minor(st.rdev)));
                    set.map_err(self.err("recording device numbers of", path))?;
                }
                self.append(path, h, &st, &kept, None, std::io::empty())
            }
            // Sockets are not content; docker and containerd skip them too.
            _ => {
                tracing::debug!(path = %String::from_utf8_lossy(path), "skipping socket");
                Ok(())
            }
        }
    }

    fn unsupported(&self, path: &[u8], feature: &'static str) -> LayerError {
        LayerError::UnsupportedOverlay {
            path: self.upper.join(std::ffi::OsStr::from_bytes_compat(path)),
            feature,
        }
    }

    /// For an inode with several links, the path it was first written at.
    fn first_link(&mut self, st: &Stat, path: &[u8]) -> Option<Vec<u8>> {
        if st.nlink < 2 {
            return None;
        }
        match self.links.entry((st.dev, st.ino)) {
            std::collections::hash_map::Entry::Occupied(o) => Some(o.get().clone()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(path.to_vec());
                None
            }
        }
    }

    /// Write one entry, preceded by a PAX header when a field does not fit
    /// ustar or the entry has xattrs or sub-second mtime.
    fn append(
        &mut self,
        path: &[u8],
        mut h: Header,
        st: &Stat,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> Result<(), LayerError> {
        let mut pax = Vec::new();
        if !set_name(&mut h, path) {
            pax_record(&mut pax, b"path", path);
        }
        if let Some(link) = link {
            if link.len() <= 100 {
                if let Some(u) = h.as_ustar_mut() {
                    u.linkname[..link.len()].copy_from_slice(link);
                }
            } else {
                pax_record(&mut pax, b"linkpath", link);
            }
        }
        if st.mtime_nsec != 0 && h.entry_type() != EntryType::Link {
            let t = format_pax_time(st.mtime_sec, st.mtime_nsec);
            pax_record(&mut pax, b"mtime", t.as_bytes());
        }
        for (k, v) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax_record(&mut pax, &key, v);
        }
        let werr = self.err("writing layer entry for", path);
        if !pax.is_empty() {
            let mut ph = Header::new_ustar();
            ph.set_entry_type(EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_size(pax.len() as u64);
            // Fixed name: GNU tar's choice, and deterministic.
            set_name(&mut ph, b"././@PaxHeader");
            ph.set_cksum();
            if let Err(e) = self.builder.append(&ph, pax.as_slice()) {
                return Err(werr(e));
            }
        }
        h.set_cksum();
        self.entries += 1;
        self.builder.append(&h, data).map_err(werr)
    }
}

/// A ustar header holding only what a layer records.
fn header(kind: EntryType, st: &Stat, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(st.mode);
    h.set_uid(u64::from(st.uid));
    h.set_gid(u64::from(st.gid));
    h.set_size(size);
    // Pre-epoch times are clamped; PAX carries the exact value.
    h.set_mtime(u64::try_from(st.mtime_sec).unwrap_or(0));
    h
}

/// Put `path` in the ustar name (and prefix) fields; false if it does not fit.
fn set_name(h: &mut Header, path: &[u8]) -> bool {
    let Some(u) = h.as_ustar_mut() else {
        return false;
    };
    if path.len() <= 100 {
        u.name[..path.len()].copy_from_slice(path);
        return true;
    }
    // Split at a '/' so that prefix ≤ 155 and name ≤ 100 (trailing '/' of a
    // directory stays with the name).
    let body = path.strip_suffix(b"/").unwrap_or(path);
    for (i, b) in body.iter().enumerate().rev() {
        if *b != b'/' {
            continue;
        }
        let (prefix, name) = (&path[..i], &path[i + 1..]);
        if name.len() > 100 {
            return false;
        }
        if prefix.len() <= 155 {
            u.prefix[..prefix.len()].copy_from_slice(prefix);
            u.name[..name.len()].copy_from_slice(name);
            return true;
        }
    }
    false
}

/// Append one `LEN KEY=VALUE\n` record; LEN counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn format_pax_time(sec: i64, nsec: u32) -> String {
    if sec < 0 && nsec > 0 {
        // -2 s + 0.5 s is written as -1.5.
        return format!("-{}.{:09}", -(sec + 1), 1_000_000_000 - nsec);
    }
    format!("{sec}.{nsec:09}")
}

/// Reads exactly `left` bytes or fails: a file that shrank while being
/// read would otherwise produce a corrupt tar.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shrank while being read; stop the container before committing",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn read_xattrs_fd(fd: BorrowedFd<'_>) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    read_xattrs(
        |buf: &mut Vec<u8>| rustix::fs::flistxattr(fd, buf.as_mut_slice()),
        |name: &[u8], buf: &mut Vec<u8>| rustix::fs::fgetxattr(fd, name, buf.as_mut_slice()),
    )
}

fn read_xattrs_path(path: &Path) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    read_xattrs(
        |buf: &mut Vec<u8>| rustix::fs::llistxattr(path, buf.as_mut_slice()),
        |name: &[u8], buf: &mut Vec<u8>| rustix::fs::lgetxattr(path, name, buf.as_mut_slice()),
    )
}

/// All xattrs, sorted by name. Sizes are queried by growing the buffer on
/// ERANGE, which also copes with values that change size meanwhile.
fn read_xattrs(
    mut list: impl FnMut(&mut Vec<u8>) -> rustix::io::Result<usize>,
    mut get: impl FnMut(&[u8], &mut Vec<u8>) -> rustix::io::Result<usize>,
) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        match list(&mut buf) {
            Ok(n) => break n,
            Err(Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(errno(e)),
        }
    };
    let mut names: Vec<Vec<u8>> = buf[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    names.sort_unstable();
    let mut out = Vec::with_capacity(names.len());
    let mut val = vec![0u8; 256];
    for name in names {
        let n = loop {
            match get(&name, &mut val) {
                Ok(n) => break Some(n),
                Err(Errno::RANGE) => val.resize(val.len() * 4, 0),
                // Removed between list and get.
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(errno(e)),
            }
        };
        if let Some(n) = n {
            out.push((name, val[..n].to_vec()));
        }
    }
    Ok(out)
}

trait FromBytesCompat {
    fn from_bytes_compat(b: &[u8]) -> &Self;
}

impl FromBytesCompat for std::ffi::OsStr {
    fn from_bytes_compat(b: &[u8]) -> &Self {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        pax_record(&mut v, b"k", &[b'x'; 95]);
        assert_eq!(&v[..4], b"102 ");
        assert_eq!(v.len(), 102);
    }

    #[test]
    fn pax_times_round_trip() {
        for (s, ns) in [(0, 1), (1_700_000_000, 123_456_789), (-2, 500_000_000)] {
            let t = format_pax_time(s, ns);
            assert_eq!(
                crate::apply::parse_pax_time(t.as_bytes()),
                Some((s, ns)),
                "{t}"
            );
        }
    }
}
