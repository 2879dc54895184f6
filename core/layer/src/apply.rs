//! Applying a layer blob onto a directory in one streaming pass:
//! decompress → hash (the diffID) → tar → create each entry beneath the
//! root through [`Root`], which never follows a symlink.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::rc::Rc;

use berth_oci::{Algorithm, Digest};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use tar::EntryType;

use crate::error::errno;
use crate::hashio::HashingReader;
use crate::path::{normalize, shown};
use crate::root::{self, Meta, Root};
use crate::{Compression, LayerError, Limits};
use created::Created;
use header::read_meta;
use meter::{Exceeded, Gauge, Metered};

mod created;
mod header;
mod meter;
mod whiteout;

#[cfg(test)]
pub(crate) use header::parse_pax_time;

/// Size of the buffers around the compressed stream, the tar stream and
/// file copies: large reads keep the decompressor and hasher in their fast
/// loops.
const BUF_SIZE: usize = 256 * 1024;

/// Directory paths held for setting mtimes at the end. Past this (a layer
/// of a million deep directories), a directory's mtime is set at once: it
/// may then move when children are added, but memory stays bounded.
const DIR_TIMES_BYTES: usize = 64 << 20;

/// How whiteouts and opaque directories in the layer are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// The target is an overlayfs upper directory (or the bottom layer):
    /// `.wh.NAME` becomes a 0/0 character device `NAME`, and
    /// `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.
    /// Expects an empty target.
    #[default]
    Overlay,
    /// The target already holds the full tree of the lower layers (for
    /// flattening): whiteouts delete, and nothing marks them.
    Flatten,
}

/// Limits and choices for [`apply`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Refuse any file (including a sparse one) that claims more bytes.
    pub max_file_size: u64,
    /// Set owners from the layer (needs root); otherwise files belong to the
    /// caller.
    pub preserve_ownership: bool,
    /// Bounds on headers, total size and entry count.
    pub limits: Limits,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            max_file_size: 64 << 30,
            preserve_ownership: true,
            limits: Limits::default(),
        }
    }
}

/// What an [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// The digest of the uncompressed tar, whether or not one was expected.
    pub diff_id: Digest,
    /// Bytes of uncompressed tar, including trailing padding.
    pub uncompressed_size: u64,
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub file_bytes: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
}

/// Apply the layer in `reader` (of `media_type`) onto `target`.
///
/// The compressed stream is read exactly once. When `expected_diff_id` is
/// given, a mismatch is an error — but only after the whole stream was
/// applied, so the caller must then discard `target`; [`apply_fresh`] does
/// that itself. Any other error also leaves `target` half-written.
pub fn apply<R: Read>(
    target: &Path,
    media_type: &str,
    reader: R,
    expected_diff_id: Option<&Digest>,
    opts: &ApplyOptions,
) -> Result<ApplyStats, LayerError> {
    let compression = Compression::from_media_type(media_type)?;
    let algorithm = expected_diff_id.map_or(Algorithm::Sha256, Digest::algorithm);
    let decoder = compression.decoder(BufReader::with_capacity(BUF_SIZE, reader))?;
    let hashing = HashingReader::new(decoder, algorithm.hasher());
    let gauge = Gauge::new(opts.limits);
    let mut archive = tar::Archive::new(Metered::new(
        BufReader::with_capacity(BUF_SIZE, hashing),
        gauge.clone(),
    ));

    let mut applier = Applier {
        root: Root::open(target)?,
        opts,
        gauge: gauge.clone(),
        buf: vec![0; BUF_SIZE],
        created: Created::new(),
        dir_times: Vec::new(),
        dir_times_bytes: 0,
        entries: 0,
        file_bytes: 0,
        whiteouts: 0,
    };
    let mut last = String::new();
    let mut seen = 0u64;
    let mut entries = archive.entries().map_err(|source| LayerError::Stream {
        where_: "at the start of the tar".into(),
        source,
    })?;
    loop {
        // Between entries the tar reader reads the next one's headers (and
        // its PAX records and GNU long names, whole): those bytes count
        // against max_header_bytes.
        gauge.headers(true);
        let next = entries.next();
        gauge.headers(false);
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(|source| {
            applier.stream(format!("at {}", entry_after(&last)), &last, source)
        })?;
        seen += 1;
        if seen > opts.limits.max_entries {
            return Err(LayerError::TooManyEntries {
                limit: opts.limits.max_entries,
            });
        }
        last = applier.entry(&mut entry)?;
        // What the applier did not read (a global header, data on a link)
        // is data, not the next entry's headers.
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(|source| {
            applier.stream(format!("in the data of entry {last:?}"), &last, source)
        })?;
    }
    // The tar ends at its first zero block; whatever follows (the second
    // zero block, padding) is still part of the diffID, and reading it to
    // the end also makes the decompressor check its trailer.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())
        .map_err(|source| applier.stream("after the end of the tar".into(), &last, source))?;
    let (diff_id, uncompressed_size) = rest.into_inner().into_inner().finish();
    applier.set_dir_times()?;

    if let Some(expected) = expected_diff_id
        && *expected != diff_id
    {
        return Err(LayerError::DiffIdMismatch {
            expected: expected.clone(),
            actual: diff_id,
        });
    }
    tracing::debug!(target = %target.display(), %diff_id, entries = applier.entries, "layer applied");
    Ok(ApplyStats {
        diff_id,
        uncompressed_size,
        entries: applier.entries,
        file_bytes: applier.file_bytes,
        whiteouts: applier.whiteouts,
    })
}

/// Like [`apply`], into `target`, which must not exist yet: it is created,
/// and removed again on any error, so a refused layer leaves nothing behind.
pub fn apply_fresh<R: Read>(
    target: &Path,
    media_type: &str,
    reader: R,
    expected_diff_id: Option<&Digest>,
    opts: &ApplyOptions,
) -> Result<ApplyStats, LayerError> {
    std::fs::create_dir(target).map_err(LayerError::io("creating layer directory", target))?;
    let result = apply(target, media_type, reader, expected_diff_id, opts);
    if result.is_err()
        && let Err(e) = std::fs::remove_dir_all(target)
    {
        tracing::error!(target = %target.display(), error = %e, "removing a refused layer's directory failed");
    }
    result
}

struct Applier<'o> {
    root: Root,
    opts: &'o ApplyOptions,
    gauge: Rc<Gauge>,
    buf: Vec<u8>,
    /// Paths this layer created: whiteouts and opaque markers only hide
    /// what lower layers hold, never what the same layer adds.
    created: Created,
    /// Directory mtimes, set last because creating children changes them.
    /// Only the times: a directory's xattrs may be large and were set.
    dir_times: Vec<(Vec<u8>, rustix::fs::Timestamps)>,
    /// Path bytes held in `dir_times`, at most [`DIR_TIMES_BYTES`].
    dir_times_bytes: usize,
    entries: u64,
    file_bytes: u64,
    whiteouts: u64,
}

impl Applier<'_> {
    /// The error for a failed read of the layer stream: the limit it ran
    /// into, if that is why, or else the read error `where_`.
    fn stream(&self, where_: String, last: &str, source: std::io::Error) -> LayerError {
        match self.gauge.exceeded() {
            Some(Exceeded::Header) => LayerError::HeaderTooLarge {
                at: entry_after(last),
                limit: self.opts.limits.max_header_bytes,
            },
            Some(Exceeded::Layer) => LayerError::LayerTooLarge {
                limit: self.opts.limits.max_layer_bytes,
            },
            None => LayerError::Stream { where_, source },
        }
    }

    /// Apply one entry; returns its name for later error messages.
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<String, LayerError> {
        let kind = e.header().entry_type();
        let name = shown(&e.path_bytes());
        if kind.is_pax_global_extensions() {
            // Skipped unread, but held to the same bound as other headers.
            if e.size() > self.opts.limits.max_header_bytes {
                return Err(LayerError::HeaderTooLarge {
                    at: format!("the PAX global header {name:?}"),
                    limit: self.opts.limits.max_header_bytes,
                });
            }
            return Ok(name);
        }
        self.entries += 1;
        let (meta, pax_sparse) = read_meta(e, &name)?;
        let path = normalize(&e.path_bytes()).map_err(|reason| LayerError::UnsafePath {
            entry: name.clone(),
            reason,
        })?;
        let (dir, base) = root::parent_and_name(&path);

        if let Some(hidden) = base.strip_prefix(b".wh.") {
            if hidden == b".wh..opq" {
                self.opaque(&name, dir)?;
            } else if hidden.starts_with(b".wh.") {
                // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
                tracing::debug!(entry = %name, "skipping aufs metadata entry");
            } else if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(LayerError::UnsafePath {
                    entry: name,
                    reason: "a whiteout must name a file",
                });
            } else {
                self.whiteout(&name, dir, hidden, &meta)?;
            }
            return Ok(name);
        }

        let is_dir = kind == EntryType::Directory
            || (kind == EntryType::Regular && e.path_bytes().ends_with(b"/"));
        if path.is_empty() {
            if !is_dir {
                return Err(LayerError::UnsafePath {
                    entry: name,
                    reason: "only a directory may name the root of the layer",
                });
            }
            root::set_meta_fd(self.root.fd(), &meta, self.opts.preserve_ownership, true).map_err(
                |(op, source)| LayerError::Entry {
                    op,
                    entry: name.clone(),
                    source,
                },
            )?;
            self.dir_times.push((path, meta.timestamps()));
            return Ok(name);
        }

        if is_dir {
            self.directory(&name, dir, base, &meta)?;
            self.dir_time(&path, meta.timestamps())?;
        } else {
            match kind {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    if pax_sparse {
                        return Err(LayerError::UnsupportedEntry {
                            entry: name,
                            kind: "PAX sparse file".into(),
                        });
                    }
                    self.file(e, &name, dir, base, &meta)?;
                }
                EntryType::Symlink => {
                    let target = e.link_name_bytes().ok_or_else(|| LayerError::UnsafePath {
                        entry: name.clone(),
                        reason: "a symlink without a target",
                    })?;
                    self.symlink(&name, dir, base, &target, &meta)?;
                }
                EntryType::Link => {
                    let target = e.link_name_bytes().unwrap_or_default();
                    self.hardlink(&name, &path, &target)?;
                }
                EntryType::Char | EntryType::Block | EntryType::Fifo => {
                    let h = e.header();
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    let ft = match kind {
                        EntryType::Char => FileType::CharacterDevice,
                        EntryType::Block => FileType::BlockDevice,
                        _ => FileType::Fifo,
                    };
                    self.node(
                        &name,
                        dir,
                        base,
                        ft,
                        rustix::fs::makedev(major, minor),
                        &meta,
                    )?;
                }
                other => {
                    return Err(LayerError::UnsupportedEntry {
                        entry: name,
                        kind: format!("{other:?}"),
                    });
                }
            }
        }
        self.created.insert(&path);
        Ok(name)
    }

    fn file<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        name: &str,
        dir: &[u8],
        base: &[u8],
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let size = e.size();
        if size > self.opts.max_file_size {
            return Err(LayerError::FileTooLarge {
                entry: name.to_string(),
                size,
                limit: self.opts.max_file_size,
            });
        }
        let parent = self.root.parent(name, dir)?;
        root::remove_all(parent, base)
            .map_err(LayerError::entry("replacing existing file", name))?;
        let fd = rustix::fs::openat(
            parent,
            base,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| LayerError::entry("creating file", name)(errno(e)))?;
        let mut file = File::from(fd);
        let mut written = 0u64;
        loop {
            let n = e.read(&mut self.buf).map_err(|source| {
                self.stream(format!("in the data of entry {name:?}"), name, source)
            })?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])
                .map_err(LayerError::entry("writing file", name))?;
            written += n as u64;
        }
        // The tar reader stops quietly at end of input; a short file means
        // the stream was cut.
        if written != size {
            return Err(LayerError::Stream {
                where_: format!("in the data of entry {name:?} ({written} of {size} bytes)"),
                source: std::io::ErrorKind::UnexpectedEof.into(),
            });
        }
        self.file_bytes += written;
        root::set_meta_fd(file.as_fd(), meta, self.opts.preserve_ownership, false).map_err(
            |(op, source)| LayerError::Entry {
                op,
                entry: name.to_string(),
                source,
            },
        )
    }

    fn directory(
        &mut self,
        name: &str,
        dir: &[u8],
        base: &[u8],
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let parent = self.root.parent(name, dir)?;
        let existing =
            root::lstat_type(parent, base).map_err(LayerError::entry("inspecting", name))?;
        if existing != Some(FileType::Directory) {
            if existing.is_some() {
                root::remove_all(parent, base)
                    .map_err(LayerError::entry("replacing with a directory", name))?;
            }
            rustix::fs::mkdirat(parent, base, Mode::from_raw_mode(0o700))
                .map_err(|e| LayerError::entry("creating directory", name)(errno(e)))?;
        }
        let fd = rustix::fs::openat(
            parent,
            base,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| LayerError::entry("opening directory", name)(errno(e)))?;
        root::set_meta_fd(fd.as_fd(), meta, self.opts.preserve_ownership, true).map_err(
            |(op, source)| LayerError::Entry {
                op,
                entry: name.to_string(),
                source,
            },
        )
    }

    fn symlink(
        &mut self,
        name: &str,
        dir: &[u8],
        base: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let parent = self.root.parent(name, dir)?;
        root::remove_all(parent, base)
            .map_err(LayerError::entry("replacing existing file", name))?;
        // The target is stored verbatim: it is only ever resolved inside the
        // container, never by berth.
        rustix::fs::symlinkat(target, parent, base)
            .map_err(|e| LayerError::entry("creating symlink", name)(errno(e)))?;
        set_at(
            parent,
            base,
            meta,
            self.opts.preserve_ownership,
            false,
            name,
        )
    }

    fn hardlink(&mut self, name: &str, path: &[u8], target: &[u8]) -> Result<(), LayerError> {
        let outside = || LayerError::LinkOutside {
            entry: name.to_string(),
            target: shown(target),
        };
        let link = normalize(target).map_err(|_| outside())?;
        if link.is_empty() {
            return Err(outside());
        }
        if link == path {
            return Ok(());
        }
        let (tdir, tbase) = root::parent_and_name(&link);
        let tfd = self.root.walk(tdir, false).map_err(|e| match e {
            root::WalkError::Io(_) => root::walk_error(name, tdir, e),
            _ => outside(),
        })?;
        match root::lstat_type(tfd.as_fd(), tbase)
            .map_err(LayerError::entry("inspecting link target", name))?
        {
            Some(FileType::Directory) | None => return Err(outside()),
            Some(_) => {}
        }
        let (dir, base) = root::parent_and_name(path);
        let parent = self.root.parent(name, dir)?;
        root::remove_all(parent, base)
            .map_err(LayerError::entry("replacing existing file", name))?;
        rustix::fs::linkat(tfd.as_fd(), tbase, parent, base, AtFlags::empty())
            .map_err(|e| LayerError::entry("creating hard link", name)(errno(e)))
    }

    fn node(
        &mut self,
        name: &str,
        dir: &[u8],
        base: &[u8],
        ft: FileType,
        dev: rustix::fs::Dev,
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let parent = self.root.parent(name, dir)?;
        root::remove_all(parent, base)
            .map_err(LayerError::entry("replacing existing file", name))?;
        rustix::fs::mknodat(
            parent,
            base,
            ft,
            Mode::from_raw_mode(meta.mode & 0o7777),
            dev,
        )
        .map_err(|e| LayerError::entry("creating device node or FIFO", name)(errno(e)))?;
        set_at(parent, base, meta, self.opts.preserve_ownership, true, name)
    }

    /// Set the mtime of directory `path` at the end, or now if too many
    /// are held already.
    fn dir_time(&mut self, path: &[u8], times: rustix::fs::Timestamps) -> Result<(), LayerError> {
        if self.dir_times_bytes + path.len() > DIR_TIMES_BYTES {
            return self.set_dir_time(path, &times);
        }
        self.dir_times_bytes += path.len();
        self.dir_times.push((path.to_vec(), times));
        Ok(())
    }

    fn set_dir_times(&mut self) -> Result<(), LayerError> {
        for (path, times) in self.dir_times.iter().rev() {
            self.set_dir_time(path, times)?;
        }
        Ok(())
    }

    fn set_dir_time(&self, path: &[u8], times: &rustix::fs::Timestamps) -> Result<(), LayerError> {
        let name = || String::from_utf8_lossy(path).into_owned();
        if path.is_empty() {
            return rustix::fs::futimens(self.root.fd(), times)
                .map_err(|e| LayerError::entry("setting mtime", &name())(errno(e)));
        }
        let (dir, base) = root::parent_and_name(path);
        // A directory replaced or removed later in the layer has no
        // mtime of its own to restore.
        let Ok(fd) = self.root.walk(dir, false) else {
            return Ok(());
        };
        if root::lstat_type(fd.as_fd(), base).ok().flatten() != Some(FileType::Directory) {
            return Ok(());
        }
        rustix::fs::utimensat(fd.as_fd(), base, times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| LayerError::entry("setting mtime", &name())(errno(e)))
    }
}

/// How an error names the entry that follows `last` (empty: none yet).
fn entry_after(last: &str) -> String {
    if last.is_empty() {
        "the first entry".to_string()
    } else {
        format!("the entry after {last:?}")
    }
}

fn set_at(
    dir: BorrowedFd<'_>,
    base: &[u8],
    meta: &Meta,
    owner: bool,
    chmod: bool,
    name: &str,
) -> Result<(), LayerError> {
    root::set_meta_at(dir, base, meta, owner, chmod).map_err(|(op, source)| LayerError::Entry {
        op,
        entry: name.to_string(),
        source,
    })
}
