//! A tree inside a container, written to a tar stream by file descriptors
//! alone.
//!
//! A running container can change its files while we read them. A walk by
//! path (`/proc/self/fd/N/a/b/c`) re-resolves every component on each open,
//! so a directory swapped for a symlink to a host path between the listing
//! and the open would lead the daemon out of the container (docker cp's
//! CVE-2018-15664). Here every directory is held open as a descriptor and
//! each entry is opened relative to it, one component at a time, with
//! `O_NOFOLLOW`: a symlink is archived as a symlink and never followed, and
//! a swap makes the open fail or yields the container's own new file.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

/// The directory behind `dir` as `name/…` entries of `b`, itself first.
pub fn append_tree<W: Write>(b: &mut tar::Builder<W>, dir: OwnedFd, name: &Path) -> io::Result<()> {
    append_dir(b, dir, name, 0)
}

/// Directories nested deeper than this are refused: each level holds a
/// descriptor and a stack frame, and a container can nest without end.
const MAX_DEPTH: usize = 256;

fn append_dir<W: Write>(
    b: &mut tar::Builder<W>,
    dir: OwnedFd,
    name: &Path,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is nested more than {MAX_DEPTH} directories deep: copy a deeper directory instead",
                name.display()
            ),
        ));
    }
    let st = rustix::fs::fstat(&dir)?;
    append_dir_header(b, &st, name)?;
    let mut entries: Vec<std::ffi::OsString> = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            entries.push(std::ffi::OsStr::from_bytes(n).to_os_string());
        }
    }
    // Sorted, so the same tree gives the same archive.
    entries.sort();
    for entry in entries {
        append_entry(b, &dir, &entry, &name.join(&entry), depth)?;
    }
    Ok(())
}

/// One entry of an open directory, by its single-component name.
fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    parent: &OwnedFd,
    entry: &std::ffi::OsStr,
    name: &Path,
    depth: usize,
) -> io::Result<()> {
    let st = match rustix::fs::statat(parent, entry, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        // Removed since the listing: as if it had not been there.
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let dir = match open_nofollow(parent, entry, OFlags::DIRECTORY) {
                Ok(fd) => fd,
                // Replaced since the stat (by a symlink, a file) or removed.
                Err(e) if vanished(&e) => return Ok(()),
                Err(e) => return Err(e),
            };
            append_dir(b, dir, name, depth + 1)
        }
        FileType::RegularFile => {
            #[cfg(test)]
            tests::between_lookup_and_open();
            // Looked at, not opened, until it is known to be a regular
            // file: it may have been swapped for a FIFO or a device since
            // the stat, and opening one has effects of its own.
            let probe = match rustix::fs::openat(
                parent.as_fd(),
                entry,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            match berth_fsroot::open_regular(probe.as_fd())? {
                Some((fd, st)) => append_file(b, fd, &st, name),
                None => Ok(()),
            }
        }
        FileType::Symlink => {
            let target = match rustix::fs::readlinkat(parent, entry, Vec::new()) {
                Ok(t) => t,
                Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::INVAL) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
            let mut h = header(&st, tar::EntryType::Symlink, 0);
            b.append_link(&mut h, name, target)
        }
        FileType::Fifo => append_special(b, &st, tar::EntryType::Fifo, name),
        FileType::CharacterDevice => append_special(b, &st, tar::EntryType::Char, name),
        FileType::BlockDevice => append_special(b, &st, tar::EntryType::Block, name),
        // Sockets have no tar form (docker cp leaves them out too).
        _ => Ok(()),
    }
}

/// A regular file from its open descriptor.
pub fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    fd: OwnedFd,
    st: &Stat,
    name: &Path,
) -> io::Result<()> {
    let size = st.st_size.max(0) as u64;
    let mut h = header(st, tar::EntryType::Regular, size);
    // The header's size is a promise: a file that shrinks while we read is
    // padded with zeros, one that grows is cut, so the archive stays whole.
    let data = ExactSize {
        inner: std::fs::File::from(fd).take(size),
        left: size,
    };
    b.append_data(&mut h, name, data)
}

fn append_dir_header<W: Write>(b: &mut tar::Builder<W>, st: &Stat, name: &Path) -> io::Result<()> {
    let mut h = header(st, tar::EntryType::Directory, 0);
    b.append_data(&mut h, name, io::empty())
}

fn append_special<W: Write>(
    b: &mut tar::Builder<W>,
    st: &Stat,
    kind: tar::EntryType,
    name: &Path,
) -> io::Result<()> {
    let mut h = header(st, kind, 0);
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        let rdev = st.st_rdev;
        h.set_device_major(rustix::fs::major(rdev))?;
        h.set_device_minor(rustix::fs::minor(rdev))?;
    }
    b.append_data(&mut h, name, io::empty())
}

fn header(st: &Stat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h
}

fn open_nofollow(parent: &OwnedFd, entry: &std::ffi::OsStr, extra: OFlags) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        parent.as_fd(),
        entry,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | extra,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// The entry is gone or is no longer what the stat said (a symlink now:
/// ELOOP; a file where a directory was: ENOTDIR).
fn vanished(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let gone = [Errno::NOENT, Errno::LOOP, Errno::NOTDIR].map(|e| e.raw_os_error());
    e.raw_os_error().is_some_and(|n| gone.contains(&n))
}

/// Exactly `left` bytes: the reader's, then zeros if it ends early.
struct ExactSize<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(archive: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut a = tar::Archive::new(archive);
        let mut out = Vec::new();
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            if kind == tar::EntryType::Symlink {
                data = e
                    .link_name()
                    .expect("link")
                    .expect("target")
                    .to_string_lossy()
                    .into_owned()
                    .into_bytes();
            }
            out.push((path, kind, data));
        }
        out
    }

    #[test]
    fn archives_a_tree_and_keeps_symlinks_as_symlinks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("data");
        std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
        std::fs::write(root.join("a"), b"alpha").expect("write");
        std::fs::write(root.join("sub/deeper/b"), b"beta").expect("write");
        // Would lead out of the tree if followed.
        std::os::unix::fs::symlink("/etc", root.join("sub/out")).expect("symlink");
        nix::unistd::mkfifo(
            &root.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .expect("mkfifo");
        let fd = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .expect("open");
        let mut b = tar::Builder::new(Vec::new());
        append_tree(&mut b, fd, Path::new("data")).expect("append");
        let got = entries(&b.into_inner().expect("finish"));
        let names: Vec<_> = got.iter().map(|(p, k, _)| (p.as_str(), *k)).collect();
        assert_eq!(
            names,
            vec![
                ("data", tar::EntryType::Directory),
                ("data/a", tar::EntryType::Regular),
                ("data/fifo", tar::EntryType::Fifo),
                ("data/sub", tar::EntryType::Directory),
                ("data/sub/deeper", tar::EntryType::Directory),
                ("data/sub/deeper/b", tar::EntryType::Regular),
                ("data/sub/out", tar::EntryType::Symlink),
            ]
        );
        assert_eq!(got[1].2, b"alpha");
        assert_eq!(got[5].2, b"beta");
        assert_eq!(got[6].2, b"/etc");
    }

    thread_local! {
        /// What runs between the stat of an entry and its open, in test
        /// builds: where the container could swap the file.
        static BETWEEN: std::cell::RefCell<Option<Box<dyn FnMut()>>> =
            std::cell::RefCell::new(None);
    }

    /// The seam the walk calls between an entry's stat and its open.
    pub(super) fn between_lookup_and_open() {
        BETWEEN.with(|b| {
            if let Some(f) = b.borrow_mut().as_mut() {
                f();
            }
        });
    }

    /// Whether anything opened `path` since the watch began (inotify
    /// reports every open but an `O_PATH` one, which has no effects).
    struct OpenWatch(OwnedFd);

    impl OpenWatch {
        fn new(path: &Path) -> OpenWatch {
            use rustix::fs::inotify;
            let flags = inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK;
            let fd = inotify::init(flags).expect("inotify_init");
            inotify::add_watch(&fd, path, inotify::WatchFlags::OPEN).expect("inotify_add_watch");
            OpenWatch(fd)
        }

        fn opened(&self) -> bool {
            let mut buf = [0u8; 4096];
            match rustix::io::read(&self.0, &mut buf) {
                Ok(n) => n > 0,
                Err(rustix::io::Errno::AGAIN) => false,
                Err(e) => panic!("reading the inotify queue: {e}"),
            }
        }
    }

    /// A running container swaps a FIFO or a device node in for a regular
    /// file between the walk's stat and its open: the node is left out
    /// and never opened (opening `/dev/watchdog` arms it; a FIFO's writer
    /// wakes up).
    #[test]
    fn a_node_swapped_in_for_a_file_is_never_opened() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("data");
        std::fs::create_dir_all(&root).expect("mkdir");
        for kind in [FileType::Fifo, FileType::CharacterDevice] {
            std::fs::write(root.join("file"), b"contents").expect("write");
            let planted = tmp.path().join("planted");
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &planted,
                kind,
                Mode::from_raw_mode(0o666),
                rustix::fs::makedev(1, 3),
            )
            .expect("mknod");
            let watch = OpenWatch::new(&planted);
            let (from, to) = (planted.clone(), root.join("file"));
            BETWEEN.with(|b| {
                *b.borrow_mut() = Some(Box::new(move || {
                    std::fs::rename(&from, &to).expect("swap");
                }))
            });
            let fd = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .expect("open");
            let mut b = tar::Builder::new(Vec::new());
            let done = append_tree(&mut b, fd, Path::new("data"));
            BETWEEN.with(|b| *b.borrow_mut() = None);
            done.expect("append");
            assert!(!watch.opened(), "the {kind:?} swapped in was opened");
            let got = entries(&b.into_inner().expect("finish"));
            let names: Vec<_> = got.iter().map(|(p, k, _)| (p.as_str(), *k)).collect();
            assert_eq!(names, vec![("data", tar::EntryType::Directory)], "{kind:?}");
            std::fs::remove_file(root.join("file")).expect("rm");
        }
    }

    #[test]
    fn a_file_shorter_than_its_header_is_padded_not_torn() {
        let mut r = ExactSize {
            inner: &b"abc"[..],
            left: 5,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"abc\0\0");
        let mut r = ExactSize {
            inner: &b"abcdef"[..],
            left: 4,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn a_tree_nested_without_end_is_refused_not_followed_to_the_bottom() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("deep");
        std::fs::create_dir(&root).expect("mkdir");
        // Made by descriptors: the path would pass PATH_MAX.
        let mut dir = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .expect("open");
        for _ in 0..MAX_DEPTH + 5 {
            rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
            dir = rustix::fs::openat(&dir, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .expect("openat");
        }
        let fd = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .expect("open");
        let mut b = tar::Builder::new(Vec::new());
        let err = append_tree(&mut b, fd, Path::new("deep")).expect_err("too deep");
        assert!(err.to_string().contains("nested more than 256"), "{err}");
    }
}
