//! RootView against hostile trees: every test puts a secret outside the
//! root and checks it can never be read through the view.

use std::os::unix::fs::symlink;

use crate::*;

const SECRET: &[u8] = b"host secret, never readable";

/// `outer/secret` beside `outer/img/` (the root), plus an image
/// `/etc/passwd` and a deep directory.
fn tree() -> (tempfile::TempDir, RootView) {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret"), SECRET).unwrap();
    let img = outer.path().join("img");
    std::fs::create_dir_all(img.join("etc")).unwrap();
    std::fs::create_dir_all(img.join("a/b/c")).unwrap();
    std::fs::write(img.join("etc/os-release"), b"ID=test\n").unwrap();
    std::fs::write(img.join("a/b/c/file"), b"deep").unwrap();
    let view = RootView::open(&img).unwrap();
    (outer, view)
}

fn img(outer: &tempfile::TempDir) -> std::path::PathBuf {
    outer.path().join("img")
}

fn assert_not_secret(result: Result<Vec<u8>, FsError>) {
    if let Ok(bytes) = &result {
        assert_ne!(bytes.as_slice(), SECRET, "read the host secret");
    }
}

#[test]
fn reads_inside_the_root() {
    let (_outer, view) = tree();
    assert_eq!(view.read("/etc/os-release", 0, 100).unwrap(), b"ID=test\n");
    assert_eq!(view.read("/etc/os-release", 3, 2).unwrap(), b"te");
    assert_eq!(view.read("/etc/os-release", 100, 2).unwrap(), b"");
    assert_eq!(view.read("/a/b/c/file", 0, 10).unwrap(), b"deep");
}

#[test]
fn dotdot_is_clamped_at_the_root() {
    let (_outer, view) = tree();
    assert_not_secret(view.read("/../secret", 0, 100));
    assert_not_secret(view.read("/a/../../../../secret", 0, 100));
    assert_eq!(view.read("/../../secret", 0, 100), Err(FsError::NotFound));
    // `..` inside the image still works.
    assert_eq!(
        view.read("/a/b/../../etc/os-release", 0, 3).unwrap(),
        b"ID="
    );
}

#[test]
fn relative_symlink_escape_stays_inside() {
    let (outer, view) = tree();
    symlink("../../../../../secret", img(&outer).join("etc/passwd")).unwrap();
    let result = view.read("/etc/passwd", 0, 100);
    assert_not_secret(result.clone());
    assert_eq!(result, Err(FsError::NotFound));
    // The link is reported as stored.
    let st = view.stat("/etc/passwd").unwrap();
    assert_eq!(st.kind, FileKind::Symlink);
    assert_eq!(st.link_target.as_deref(), Some("../../../../../secret"));
}

#[test]
fn absolute_symlink_target_is_relative_to_the_root() {
    let (outer, view) = tree();
    let secret_abs = outer.path().join("secret");
    symlink(&secret_abs, img(&outer).join("etc/abs")).unwrap();
    assert_not_secret(view.read("/etc/abs", 0, 100));
    // An absolute target that exists inside the image is followed there.
    symlink("/etc/os-release", img(&outer).join("etc/alias")).unwrap();
    assert_eq!(view.read("/etc/alias", 0, 100).unwrap(), b"ID=test\n");
}

#[test]
fn symlinked_directory_escape_stays_inside() {
    let (outer, view) = tree();
    symlink(outer.path(), img(&outer).join("up")).unwrap();
    symlink("../..", img(&outer).join("a/rel-up")).unwrap();
    assert_not_secret(view.read("/up/secret", 0, 100));
    assert_not_secret(view.read("/a/rel-up/secret", 0, 100));
    assert_not_secret(view.read("/a/rel-up/../secret", 0, 100));
    let names: Vec<String> = view
        .list_dir("/a/rel-up")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(!names.contains(&"secret".to_string()), "{names:?}");
    assert!(names.contains(&"etc".to_string()), "{names:?}");
}

#[test]
fn link_loops_end_with_an_error() {
    let (outer, view) = tree();
    symlink("/loop-b", img(&outer).join("loop-a")).unwrap();
    symlink("/loop-a", img(&outer).join("loop-b")).unwrap();
    symlink("self", img(&outer).join("self")).unwrap();
    for path in ["/loop-a", "/self"] {
        match view.read(path, 0, 10) {
            Err(FsError::Denied(msg)) => assert!(msg.contains("symbolic links"), "{msg}"),
            other => panic!("{path}: expected a loop error, got {other:?}"),
        }
    }
    assert_eq!(view.stat("/loop-a").unwrap().kind, FileKind::Symlink);
}

#[test]
fn relative_paths_are_invalid() {
    let (_outer, view) = tree();
    for path in ["etc/os-release", "", "../secret"] {
        assert!(
            matches!(view.read(path, 0, 10), Err(FsError::InvalidPath(_))),
            "{path:?}"
        );
    }
    assert!(matches!(view.list_dir("etc"), Err(FsError::InvalidPath(_))));
}

#[test]
fn list_dir_is_sorted_and_typed() {
    let (outer, view) = tree();
    symlink("os-release", img(&outer).join("etc/link")).unwrap();
    std::fs::write(img(&outer).join("etc/b"), b"12345").unwrap();
    let entries = view.list_dir("/etc").unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["b", "link", "os-release"]);
    assert_eq!(entries[0].kind, FileKind::File);
    assert_eq!(entries[0].size, 5);
    assert_eq!(entries[1].kind, FileKind::Symlink);
    assert_eq!(entries[1].link_target.as_deref(), Some("os-release"));
    let root: Vec<String> = view
        .list_dir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(root, ["a", "etc"]);
}

#[test]
fn stat_and_errors() {
    let (_outer, view) = tree();
    assert_eq!(view.stat("/").unwrap().kind, FileKind::Directory);
    assert_eq!(view.stat("/etc").unwrap().kind, FileKind::Directory);
    assert_eq!(view.stat("/etc/os-release").unwrap().size, 8);
    assert_eq!(view.stat("/nope"), Err(FsError::NotFound));
    assert_eq!(view.read("/etc", 0, 10), Err(FsError::IsADirectory));
    assert_eq!(
        view.list_dir("/etc/os-release"),
        Err(FsError::NotADirectory)
    );
    assert_eq!(view.stat("/..").unwrap().kind, FileKind::Directory);
}

#[test]
fn reads_are_capped() {
    let (outer, view) = tree();
    let big = vec![7u8; MAX_READ as usize + 10];
    std::fs::write(img(&outer).join("big"), &big).unwrap();
    let got = view.read("/big", 0, u32::MAX).unwrap();
    assert_eq!(got.len(), MAX_READ as usize);
    let rest = view.read("/big", u64::from(MAX_READ), u32::MAX).unwrap();
    assert_eq!(rest.len(), 10);
}

#[test]
fn fifo_is_refused_without_blocking() {
    let (outer, view) = tree();
    let fifo = img(&outer).join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert!(matches!(view.read("/fifo", 0, 10), Err(FsError::Denied(_))));
    assert_eq!(view.stat("/fifo").unwrap().kind, FileKind::Other);
}

/// An image's FIFO or device node (scan on push unpacks layers into a
/// plain directory, where a node works) is refused without being opened:
/// opening `/dev/watchdog` arms it, opening a block device reads the
/// host's disk. inotify reports every open but an `O_PATH` look.
#[test]
fn nodes_are_refused_without_being_opened() {
    use rustix::fs::inotify;
    let (outer, view) = tree();
    for (name, kind) in [
        ("fifo", rustix::fs::FileType::Fifo),
        ("null", rustix::fs::FileType::CharacterDevice),
    ] {
        let node = img(&outer).join(name);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &node,
            kind,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        symlink(name, img(&outer).join(format!("{name}-link"))).unwrap();
        let watch =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).unwrap();
        inotify::add_watch(&watch, &node, inotify::WatchFlags::OPEN).unwrap();
        for path in [format!("/{name}"), format!("/{name}-link")] {
            assert!(
                matches!(view.read(&path, 0, 10), Err(FsError::Denied(_))),
                "{path}"
            );
        }
        let mut buf = [0u8; 4096];
        assert_eq!(
            rustix::io::read(&watch, &mut buf),
            Err(rustix::io::Errno::AGAIN),
            "the {kind:?} was opened"
        );
    }
}
