//! Hostile trees against the resolver: links out by `..`, absolute and
//! relative targets, chains past 40, dangling links, FIFOs; and the copy.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use rustix::fs::{FileType, Timespec, Timestamps};

use super::*;

/// A root and, beside it, a "host" directory its links aim at.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    host: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let host = dir.path().join("host");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(host.join("x")).unwrap();
    std::fs::write(host.join("x/secret"), "host\n").unwrap();
    std::fs::write(host.join("passwd"), "hostonly:x:1:1::/:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "image:x:2:2::/:/bin/sh\n").unwrap();
    Fixture {
        _dir: dir,
        root,
        host,
    }
}

impl Fixture {
    /// `/a/b/…` from the root's top up to the host directory, relative.
    fn up(&self) -> String {
        format!(
            "{}{}",
            "../".repeat(30),
            self.host.to_string_lossy().trim_start_matches('/')
        )
    }

    fn abs(&self) -> String {
        self.host.to_string_lossy().into_owned()
    }

    fn host_entries(&self) -> Vec<String> {
        let mut out: Vec<String> = walk(&self.host);
        out.sort();
        out
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            for sub in walk(&e.path()) {
                out.push(format!("{}/{sub}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

fn chain(root: &Path, target: &str, n: usize) {
    for i in 0..n - 1 {
        symlink(format!("/l{}", i + 1), root.join(format!("l{i}"))).unwrap();
    }
    symlink(target, root.join(format!("l{}", n - 1))).unwrap();
}

#[test]
fn links_and_dotdot_resolve_inside_the_root() {
    let f = fixture();
    symlink(f.abs(), f.root.join("abs")).unwrap();
    symlink(f.up(), f.root.join("rel")).unwrap();
    symlink(format!("/{}", f.up()), f.root.join("dotted")).unwrap();
    let root = Root::open(&f.root).unwrap();
    for p in ["/abs/x/secret", "/rel/x/secret", "/dotted/x/secret"] {
        let e = root.open_at(p, OFlags::RDONLY).unwrap_err();
        assert!(e.is_not_found(), "{p}: {e}");
    }
    let dotdot = format!("/{}/etc/passwd", "../".repeat(30));
    let data = root.read_file(&dotdot, 1024).unwrap().unwrap();
    assert_eq!(data, b"image:x:2:2::/:/bin/sh\n", "`..` stops at the root");
}

#[test]
fn read_file_never_reads_the_hosts_files() {
    let f = fixture();
    let host_passwd = f.host.join("passwd").to_string_lossy().into_owned();
    std::fs::remove_file(f.root.join("etc/passwd")).unwrap();
    symlink(&host_passwd, f.root.join("etc/passwd")).unwrap();
    symlink(format!("{}/passwd", f.up()), f.root.join("etc/group")).unwrap();
    let root = Root::open(&f.root).unwrap();
    assert_eq!(root.read_file("/etc/passwd", 1024).unwrap(), None);
    assert_eq!(root.read_file("etc/group", 1024).unwrap(), None);
    // An in-root link is followed; a directory, a FIFO are not read.
    std::fs::write(f.root.join("etc/real"), "ok\n").unwrap();
    symlink("/etc/real", f.root.join("etc/link")).unwrap();
    assert_eq!(root.read_file("/etc/link", 1024).unwrap().unwrap(), b"ok\n");
    assert_eq!(root.read_file("/etc", 1024).unwrap(), None);
    let fifo = std::ffi::CString::new(f.root.join("etc/fifo").as_os_str().as_bytes()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        fifo.as_c_str(),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert_eq!(root.read_file("/etc/fifo", 1024).unwrap(), None);
    // A limit, and a clear error past it.
    let e = root.read_file("/etc/real", 2).unwrap_err();
    assert!(matches!(e, FsRootError::TooLarge { limit: 2, .. }), "{e}");
    assert_eq!(root.read_file("/etc/real", 3).unwrap().unwrap(), b"ok\n");
}

#[test]
fn a_self_loop_and_a_long_chain_are_eloop_with_a_clear_message() {
    let f = fixture();
    symlink("/etc/passwd2", f.root.join("etc/passwd2")).unwrap();
    chain(&f.root, &f.abs(), 41);
    let root = Root::open(&f.root).unwrap();
    let e = root.read_file("/etc/passwd2", 1024).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::LOOP.raw_os_error()), "{e}");
    for e in [
        root.mkdir_all("/l0/made", 0o755).unwrap_err(),
        root.create_file("/l0/made", 0o644).unwrap_err(),
        root.open_at("/l0", OFlags::PATH).unwrap_err(),
    ] {
        assert_eq!(e.raw_os_error(), Some(Errno::LOOP.raw_os_error()), "{e}");
        assert!(
            e.to_string().contains("too many levels of symbolic links"),
            "{e}"
        );
    }
    assert_eq!(f.host_entries(), ["passwd", "x", "x/secret"]);
}

#[test]
fn mkdir_all_makes_what_links_name_inside_the_root() {
    let f = fixture();
    symlink(format!("{}/made-abs", f.abs()), f.root.join("abs")).unwrap();
    symlink(f.up(), f.root.join("rel")).unwrap();
    symlink("dangling/deeper", f.root.join("dangle")).unwrap();
    // A chain under the limit, ending in a dangling absolute link.
    chain(&f.root, &format!("{}/made-chain", f.abs()), 20);
    let root = Root::open(&f.root).unwrap();
    let inside = f.root.join(f.abs().trim_start_matches('/'));
    for (path, made) in [
        ("/abs", inside.join("made-abs")),
        ("/abs/sub", inside.join("made-abs/sub")),
        ("/rel/made-rel/a/b", inside.join("made-rel/a/b")),
        ("/dangle/x", f.root.join("dangling/deeper/x")),
        ("/l0/y", inside.join("made-chain/y")),
        ("/new/../other/./c", f.root.join("other/c")),
        (&format!("{}/top", "/..".repeat(40)), f.root.join("top")),
    ] {
        let fd = root.mkdir_all(path, 0o755).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        let want = std::fs::metadata(&made).unwrap();
        assert_eq!((st.st_dev, st.st_ino), (want.dev(), want.ino()), "{path}");
    }
    // An existing directory is fine; a file on the way is not.
    root.mkdir_all("/abs/sub", 0o755).unwrap();
    let e = root.mkdir_all("/etc/passwd/x", 0o755).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::NOTDIR.raw_os_error()), "{e}");
    assert_eq!(f.host_entries(), ["passwd", "x", "x/secret"]);
}

#[test]
fn create_file_makes_an_empty_file_inside_the_root() {
    let f = fixture();
    std::fs::remove_dir_all(f.root.join("etc")).unwrap();
    symlink(format!("{}/etc", f.up()), f.root.join("etc")).unwrap();
    symlink(format!("{}/hosts-out", f.abs()), f.root.join("hosts")).unwrap();
    let root = Root::open(&f.root).unwrap();
    root.create_file("/etc/hostname", 0o644).unwrap();
    root.create_file("/hosts", 0o644).unwrap();
    let inside = f.root.join(f.abs().trim_start_matches('/'));
    assert_eq!(std::fs::read(inside.join("etc/hostname")).unwrap(), b"");
    assert!(inside.join("hosts-out").is_file());
    // Something already there is left as it is.
    root.create_file("/etc", 0o644).unwrap();
    assert!(inside.join("etc").is_dir());
    assert_eq!(f.host_entries(), ["passwd", "x", "x/secret"]);
}

#[test]
fn copy_keeps_modes_owners_times_and_links_and_skips_special_files() {
    let f = fixture();
    let src = f.root.join("data");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("sub/deeper/file"), "contents").unwrap();
    std::fs::write(src.join("setuid"), "x").unwrap();
    std::os::unix::fs::chown(src.join("setuid"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(src.join("setuid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::lchown(src.join("sub"), Some(42), Some(43)).unwrap();
    std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    symlink(f.abs(), src.join("out")).unwrap();
    std::os::unix::fs::lchown(src.join("out"), Some(7), Some(8)).unwrap();
    let fifo = std::ffi::CString::new(src.join("fifo").as_os_str().as_bytes()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        fifo.as_c_str(),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let old = Timestamps {
        last_access: Timespec {
            tv_sec: 1_000_000,
            tv_nsec: 5,
        },
        last_modification: Timespec {
            tv_sec: 2_000_000,
            tv_nsec: 7,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        src.join("sub/deeper/file"),
        &old,
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    rustix::fs::utimensat(
        rustix::fs::CWD,
        src.join("sub"),
        &old,
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o711)).unwrap();
    // Reached through an image link that points out: copied from inside.
    symlink(format!("/{}data", "../".repeat(30)), f.root.join("link")).unwrap();

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = rustix::fs::open(
        dst_dir.path(),
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    let root = Root::open(&f.root).unwrap();
    let copied = root.copy_dir_to("/link", dst.as_fd()).unwrap().unwrap();
    assert_eq!(
        copied,
        Copied {
            entries: 5,
            skipped: 1
        },
        "fifo skipped"
    );
    let d = dst_dir.path();
    let m = std::fs::metadata(d.join("sub/deeper/file")).unwrap();
    assert_eq!((m.atime(), m.mtime()), (1_000_000, 2_000_000));
    // (Reading it moves its atime: checked before.)
    assert_eq!(
        std::fs::read(d.join("sub/deeper/file")).unwrap(),
        b"contents"
    );
    let m = std::fs::metadata(d.join("setuid")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o4755, 1234, 5678));
    let m = std::fs::metadata(d.join("sub")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o750, 42, 43));
    assert_eq!(
        (m.mtime(), m.mtime_nsec()),
        (2_000_000, 7),
        "directory times after its contents"
    );
    let m = std::fs::symlink_metadata(d.join("out")).unwrap();
    assert!(m.file_type().is_symlink());
    assert_eq!((m.uid(), m.gid()), (7, 8));
    assert_eq!(std::fs::read_link(d.join("out")).unwrap(), f.host);
    assert!(std::fs::symlink_metadata(d.join("fifo")).is_err());
    let m = std::fs::metadata(d).unwrap();
    assert_eq!(
        m.mode() & 0o7777,
        0o711,
        "the destination takes the source's mode"
    );

    // Nothing at the path, or not a directory: nothing to copy.
    assert_eq!(root.copy_dir_to("/missing", dst.as_fd()).unwrap(), None);
    assert_eq!(root.copy_dir_to("/etc/passwd", dst.as_fd()).unwrap(), None);
}

#[test]
fn copy_refuses_a_tree_deeper_than_the_bound() {
    let f = fixture();
    let mut deep = f.root.join("deep");
    for _ in 0..=MAX_COPY_DEPTH + 1 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = rustix::fs::open(
        dst_dir.path(),
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    let root = Root::open(&f.root).unwrap();
    let e = root.copy_dir_to("/deep", dst.as_fd()).unwrap_err();
    assert!(matches!(e, FsRootError::TooDeep { .. }), "{e}");
    assert!(e.to_string().contains("nested more than"), "{e}");
}

#[test]
fn relative_paths_for_openat2() {
    assert_eq!(relative("/"), b".");
    assert_eq!(relative("//dev/./pts/"), b"dev/pts");
    assert_eq!(relative("/a/../b"), b"a/../b");
    assert_eq!(
        parent_and_name("/dev/pts"),
        Some((b"dev".to_vec(), b"pts".to_vec()))
    );
    assert_eq!(
        parent_and_name("/etc"),
        Some((b".".to_vec(), b"etc".to_vec()))
    );
    assert_eq!(parent_and_name("/"), None);
    assert_eq!(parent_and_name("/a/.."), None);
}

thread_local! {
    /// What runs between a lookup and the open that follows it, in test
    /// builds: where a container could swap the file it names.
    static BETWEEN: std::cell::RefCell<Option<Box<dyn FnMut()>>> =
        std::cell::RefCell::new(None);
}

/// The seam the code under test calls between a lookup and its open.
pub(crate) fn between_lookup_and_open() {
    BETWEEN.with(|b| {
        if let Some(f) = b.borrow_mut().as_mut() {
            f();
        }
    });
}

/// Runs `f` with `swap` called at the seam (on this thread only).
fn with_swap<T>(swap: impl FnMut() + 'static, f: impl FnOnce() -> T) -> T {
    BETWEEN.with(|b| *b.borrow_mut() = Some(Box::new(swap)));
    let out = f();
    BETWEEN.with(|b| *b.borrow_mut() = None);
    out
}

/// Makes a FIFO or a character device (a copy of `/dev/null`) at `path`.
fn mknod(path: &Path, kind: FileType) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        kind,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
}

/// Whether anything opened a file since the watch began: inotify reports
/// every open but an `O_PATH` one (which reads and writes nothing), so
/// this tells a look at a FIFO or device from an open of it, which has
/// effects (a FIFO's writer wakes; `/dev/watchdog` arms).
struct OpenWatch(OwnedFd);

impl OpenWatch {
    fn new(path: &Path) -> OpenWatch {
        use rustix::fs::inotify;
        let fd =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).unwrap();
        inotify::add_watch(&fd, path, inotify::WatchFlags::OPEN).unwrap();
        OpenWatch(fd)
    }

    fn opened(&self) -> bool {
        let mut buf = [0u8; 4096];
        match rustix::io::read(&self.0, &mut buf) {
            Ok(n) => n > 0,
            Err(Errno::AGAIN) => false,
            Err(e) => panic!("reading the inotify queue: {e}"),
        }
    }
}

#[test]
fn the_watch_tells_a_look_from_an_open() {
    let f = fixture();
    let fifo = f.root.join("fifo");
    mknod(&fifo, FileType::Fifo);
    let watch = OpenWatch::new(&fifo);
    let root = Root::open(&f.root).unwrap();
    drop(root.open_at("/fifo", OFlags::PATH).unwrap());
    assert_eq!(root.read_file("/fifo", 16).unwrap(), None);
    assert!(!watch.opened(), "a look is not an open");
    drop(
        root.open_at("/fifo", OFlags::RDONLY | OFlags::NONBLOCK)
            .unwrap(),
    );
    assert!(watch.opened(), "an open is seen");
}

/// A container swaps a FIFO or a device node in for the file `read_file`
/// just looked up: what is read is the file looked up, and the node is
/// never opened.
#[test]
fn read_file_never_opens_a_node_swapped_in_after_the_lookup() {
    let f = fixture();
    let root = Root::open(&f.root).unwrap();
    let real = f.root.join("etc/real");
    for kind in [FileType::Fifo, FileType::CharacterDevice] {
        std::fs::write(&real, "ok\n").unwrap();
        let planted = f.root.join("planted");
        mknod(&planted, kind);
        let watch = OpenWatch::new(&planted);
        let (from, to) = (planted.clone(), real.clone());
        let got = with_swap(
            move || std::fs::rename(&from, &to).unwrap(),
            || root.read_file("/etc/real", 1024).unwrap(),
        );
        assert!(!watch.opened(), "the {kind:?} swapped in was opened");
        assert_eq!(got.as_deref(), Some(&b"ok\n"[..]), "{kind:?}");
        std::fs::remove_file(&real).unwrap();
    }
}

/// The same swap under a copy: the node is skipped, never opened.
#[test]
fn copy_never_opens_a_node_swapped_in_after_the_listing() {
    let f = fixture();
    let root = Root::open(&f.root).unwrap();
    let data = f.root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for kind in [FileType::Fifo, FileType::CharacterDevice] {
        std::fs::write(data.join("file"), "contents").unwrap();
        let planted = f.root.join("planted");
        mknod(&planted, kind);
        let watch = OpenWatch::new(&planted);
        let (from, to) = (planted.clone(), data.join("file"));
        let dst_dir = tempfile::tempdir().unwrap();
        let dst = rustix::fs::open(
            dst_dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let copied = with_swap(
            move || std::fs::rename(&from, &to).unwrap(),
            || root.copy_dir_to("/data", dst.as_fd()).unwrap().unwrap(),
        );
        assert!(!watch.opened(), "the {kind:?} swapped in was opened");
        assert_eq!(copied.entries, 0, "{kind:?}");
        assert!(std::fs::symlink_metadata(dst_dir.path().join("file")).is_err());
        std::fs::remove_file(data.join("file")).unwrap();
    }
}

/// A file capability (`security.capability`, as `setcap cap_net_raw+ep`
/// writes it) and set-id bits survive the copy with the owner: the kernel
/// drops both when a file changes owner, so they must be set after it.
#[test]
fn copy_keeps_file_capabilities_and_set_id_bits_with_the_owner() {
    // struct vfs_cap_data, revision 2, effective; permitted: CAP_NET_RAW (13).
    let mut caps = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        caps.extend_from_slice(&word.to_le_bytes());
    }
    let f = fixture();
    let src = f.root.join("data");
    std::fs::create_dir_all(&src).unwrap();
    let ping = src.join("ping");
    std::fs::write(&ping, "binary").unwrap();
    std::os::unix::fs::chown(&ping, Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(&ping, std::fs::Permissions::from_mode(0o6755)).unwrap();
    rustix::fs::setxattr(
        &ping,
        "security.capability",
        &caps,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(&ping, "user.note", b"kept", rustix::fs::XattrFlags::empty()).unwrap();

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = rustix::fs::open(
        dst_dir.path(),
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    let root = Root::open(&f.root).unwrap();
    root.copy_dir_to("/data", dst.as_fd()).unwrap().unwrap();
    let copy = dst_dir.path().join("ping");
    let m = std::fs::metadata(&copy).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o6755, 1234, 5678));
    let mut got = vec![0u8; 64];
    let n = rustix::fs::getxattr(&copy, "security.capability", &mut got)
        .expect("security.capability was dropped");
    assert_eq!(&got[..n], &caps[..]);
    let n = rustix::fs::getxattr(&copy, "user.note", &mut got).unwrap();
    assert_eq!(&got[..n], b"kept");
}
