//! The conformance cases. Each states the part of the contract it checks.

use std::collections::BTreeMap;
use std::fs;

use super::{Fixture, Make};
use crate::{DISPOSABLE, Kind, Labels, SnapshotError};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {{
        let r = $result;
        assert!(
            matches!(r, Err($pattern)),
            "expected {}, got {r:?}",
            stringify!($pattern)
        );
    }};
}

/// Files written in an active snapshot are visible, after commit, through
/// views and children; views are read-only; a child's changes do not leak
/// into its parent.
pub fn prepare_commit_view(make: Make<'_>) {
    let f = Fixture::new(make);
    let mounts = f
        .snap()
        .prepare("base-active", None, Labels::new())
        .unwrap();
    let m = f.mount(&mounts, "base-active");
    fs::write(m.join("hello"), "hello").unwrap();
    fs::create_dir(m.join("dir")).unwrap();
    fs::write(m.join("dir/inner"), "inner").unwrap();
    m.unmount();
    f.snap()
        .commit("base", "base-active", Labels::new())
        .unwrap();
    assert_err!(f.snap().stat("base-active"), SnapshotError::NotFound(_));

    let mounts = f
        .snap()
        .view("base-view", Some("base"), Labels::new())
        .unwrap();
    let v = f.mount(&mounts, "base-view");
    assert_eq!(v.read("hello"), "hello");
    assert_eq!(v.read("dir/inner"), "inner");
    assert!(
        fs::write(v.join("new"), "x").is_err(),
        "a view must be read-only"
    );
    v.unmount();

    let mounts = f
        .snap()
        .prepare("child-active", Some("base"), Labels::new())
        .unwrap();
    let c = f.mount(&mounts, "child-active");
    assert_eq!(c.read("hello"), "hello");
    fs::write(c.join("hello"), "changed").unwrap();
    fs::write(c.join("world"), "world").unwrap();
    c.unmount();
    f.snap()
        .commit("child", "child-active", Labels::new())
        .unwrap();

    let mounts = f
        .snap()
        .view("child-view", Some("child"), Labels::new())
        .unwrap();
    let v = f.mount(&mounts, "child-view");
    assert_eq!(v.read("hello"), "changed");
    assert_eq!(v.read("world"), "world");
    assert_eq!(v.read("dir/inner"), "inner");
    assert!(
        fs::write(v.join("new"), "x").is_err(),
        "a view must be read-only"
    );
    v.unmount();

    // The parent is unchanged, seen through `mounts` of the existing view.
    let v = f.mount(&f.snap().mounts("base-view").unwrap(), "base-view-again");
    assert_eq!(v.read("hello"), "hello");
    assert!(!v.join("world").exists());
    v.unmount();
    assert_err!(
        f.snap().mounts("base"),
        SnapshotError::FailedPrecondition { .. }
    );
    assert_err!(f.snap().mounts("nope"), SnapshotError::NotFound(_));
}

/// Deleting in an upper layer hides the lower file (whiteout), and a
/// directory removed and re-created hides its old contents (opaque dir).
pub fn whiteouts_hide_lower_files(make: Make<'_>) {
    let f = Fixture::new(make);
    f.layer("base", None, |p| {
        fs::write(p.join("gone"), "x").unwrap();
        fs::write(p.join("kept"), "kept").unwrap();
        fs::create_dir_all(p.join("dir")).unwrap();
        fs::write(p.join("dir/file"), "x").unwrap();
        fs::create_dir_all(p.join("redo")).unwrap();
        fs::write(p.join("redo/old"), "old").unwrap();
    });
    f.layer("top", Some("base"), |p| {
        fs::remove_file(p.join("gone")).unwrap();
        fs::remove_dir_all(p.join("dir")).unwrap();
        fs::remove_dir_all(p.join("redo")).unwrap();
        fs::create_dir(p.join("redo")).unwrap();
        fs::write(p.join("redo/new"), "new").unwrap();
    });
    let check = |name: &str, mounts: &[crate::Mount]| {
        let v = f.mount(mounts, name);
        assert!(!v.join("gone").exists(), "deleted file visible in {name}");
        assert!(
            !v.join("dir").exists(),
            "deleted directory visible in {name}"
        );
        assert!(
            !v.join("redo/old").exists(),
            "old contents of re-created dir in {name}"
        );
        assert_eq!(v.read("redo/new"), "new");
        assert_eq!(v.read("kept"), "kept");
        v.unmount();
    };
    check(
        "view",
        &f.snap().view("view", Some("top"), Labels::new()).unwrap(),
    );
    check(
        "rw",
        &f.snap().prepare("rw", Some("top"), Labels::new()).unwrap(),
    );
    let v = f.mount(
        &f.snap()
            .view("base-view", Some("base"), Labels::new())
            .unwrap(),
        "bv",
    );
    assert_eq!(v.read("gone"), "x");
    assert_eq!(v.read("redo/old"), "old");
}

/// `stat` reports kind, parent, labels (commit adds to prepare's) and time.
pub fn stat_reports_kind_parent_labels(make: Make<'_>) {
    let f = Fixture::new(make);
    let s = f.snap();
    s.prepare("a", None, labels(&[("one", "1")])).unwrap();
    let info = s.stat("a").unwrap();
    assert_eq!(
        (info.name.as_str(), info.kind, info.parent.as_deref()),
        ("a", Kind::Active, None)
    );
    assert_eq!(info.labels, labels(&[("one", "1")]));
    assert!(info.created > 0);

    s.commit("c", "a", labels(&[("two", "2")])).unwrap();
    let info = s.stat("c").unwrap();
    assert_eq!((info.kind, info.parent.as_deref()), (Kind::Committed, None));
    assert_eq!(info.labels, labels(&[("one", "1"), ("two", "2")]));

    s.view("v", Some("c"), Labels::new()).unwrap();
    let info = s.stat("v").unwrap();
    assert_eq!((info.kind, info.parent.as_deref()), (Kind::View, Some("c")));
    s.prepare("b", Some("c"), Labels::new()).unwrap();
    let info = s.stat("b").unwrap();
    assert_eq!(
        (info.kind, info.parent.as_deref()),
        (Kind::Active, Some("c"))
    );
    assert_err!(s.stat("nope"), SnapshotError::NotFound(_));
}

/// A snapshot with children cannot be removed; views, actives and then
/// childless parents can; removing what is gone is NotFound.
pub fn remove_rules(make: Make<'_>) {
    let f = Fixture::new(make);
    f.layer("base", None, |p| fs::write(p.join("f"), "f").unwrap());
    let s = f.snap();
    s.view("v", Some("base"), Labels::new()).unwrap();
    s.prepare("b", Some("base"), Labels::new()).unwrap();
    assert_err!(s.remove("base"), SnapshotError::FailedPrecondition { .. });
    s.remove("v").unwrap();
    assert_err!(s.stat("v"), SnapshotError::NotFound(_));
    assert_err!(s.remove("base"), SnapshotError::FailedPrecondition { .. });
    // The failed removals changed nothing.
    let m = f.mount(&s.mounts("b").unwrap(), "b");
    assert_eq!(m.read("f"), "f");
    m.unmount();
    s.remove("b").unwrap();
    s.remove("base").unwrap();
    assert_err!(s.stat("base"), SnapshotError::NotFound(_));
    assert_err!(s.remove("base"), SnapshotError::NotFound(_));
    let mut left = 0;
    s.walk(&mut |_| left += 1).unwrap();
    assert_eq!(left, 0);
}

/// Commit only active snapshots, once, to a free name; parents must exist
/// and be committed; keys and names share one namespace (so an image store
/// naming layers by chain ID stores each stack once); failures leave
/// nothing behind.
pub fn commit_and_create_rules(make: Make<'_>) {
    let f = Fixture::new(make);
    let s = f.snap();
    s.prepare("a", None, Labels::new()).unwrap();
    s.commit("c", "a", Labels::new()).unwrap();
    assert_err!(
        s.commit("c2", "a", Labels::new()),
        SnapshotError::NotFound(_)
    );
    assert_err!(
        s.commit("c3", "c", Labels::new()),
        SnapshotError::FailedPrecondition { .. }
    );

    s.prepare("b", Some("c"), Labels::new()).unwrap();
    assert_err!(
        s.commit("c", "b", Labels::new()),
        SnapshotError::AlreadyExists(_)
    );
    assert_eq!(s.stat("b").unwrap().kind, Kind::Active);

    s.view("v", Some("c"), Labels::new()).unwrap();
    assert_err!(
        s.commit("cv", "v", Labels::new()),
        SnapshotError::FailedPrecondition { .. }
    );

    assert_err!(
        s.prepare("b", None, Labels::new()),
        SnapshotError::AlreadyExists(_)
    );
    assert_err!(
        s.prepare("c", None, Labels::new()),
        SnapshotError::AlreadyExists(_)
    );
    assert_err!(
        s.view("c", Some("c"), Labels::new()),
        SnapshotError::AlreadyExists(_)
    );
    assert_err!(
        s.prepare("x", Some("missing"), Labels::new()),
        SnapshotError::NotFound(_)
    );
    assert_err!(
        s.prepare("y", Some("b"), Labels::new()),
        SnapshotError::FailedPrecondition { .. }
    );
    assert_err!(
        s.view("y", Some("v"), Labels::new()),
        SnapshotError::FailedPrecondition { .. }
    );
    assert!(
        s.prepare("", None, Labels::new()).is_err(),
        "an empty key is invalid"
    );

    let mut names = Vec::new();
    s.walk(&mut |i| names.push(i.name.clone())).unwrap();
    names.sort();
    assert_eq!(names, ["b", "c", "v"]);
    // The committed layer still counts exactly its two children.
    s.remove("b").unwrap();
    s.remove("v").unwrap();
    s.remove("c").unwrap();
}

/// A disposable active snapshot (a `--rm` container's) works as any
/// other while mounted, cannot be committed, and is removed as any other.
pub fn disposable_snapshots_run_but_never_commit(make: Make<'_>) {
    let f = Fixture::new(make);
    let s = f.snap();
    let m = f.mount(
        &s.prepare("base-active", None, Labels::new()).unwrap(),
        "base",
    );
    fs::write(m.join("hello"), "hello").unwrap();
    m.unmount();
    s.commit("base", "base-active", Labels::new()).unwrap();

    let mounts = s
        .prepare("scratch", Some("base"), labels(&[(DISPOSABLE, "")]))
        .unwrap();
    let m = f.mount(&mounts, "scratch");
    assert_eq!(m.read("hello"), "hello");
    fs::write(m.join("hello"), "changed").unwrap();
    assert_eq!(m.read("hello"), "changed");
    m.unmount();
    assert_err!(
        s.commit("kept", "scratch", Labels::new()),
        SnapshotError::FailedPrecondition { .. }
    );
    assert_eq!(s.stat("scratch").unwrap().kind, Kind::Active);
    s.remove("scratch").unwrap();
    s.remove("base").unwrap();
}

/// `walk` visits every snapshot once with its kind and parent.
pub fn walk_lists_everything(make: Make<'_>) {
    let f = Fixture::new(make);
    f.layer("c1", None, |_| {});
    f.layer("c2", Some("c1"), |_| {});
    let s = f.snap();
    s.prepare("a", Some("c2"), Labels::new()).unwrap();
    s.view("v", Some("c1"), Labels::new()).unwrap();
    s.prepare("lone", None, Labels::new()).unwrap();
    let mut seen = BTreeMap::new();
    s.walk(&mut |i| {
        let dup = seen.insert(i.name.clone(), (i.kind, i.parent.clone()));
        assert!(dup.is_none(), "{} visited twice", i.name);
    })
    .unwrap();
    let c1 = Some("c1".to_string());
    let expected = BTreeMap::from([
        ("a".to_string(), (Kind::Active, Some("c2".to_string()))),
        ("c1".to_string(), (Kind::Committed, None)),
        ("c2".to_string(), (Kind::Committed, c1.clone())),
        ("lone".to_string(), (Kind::Active, None)),
        ("v".to_string(), (Kind::View, c1)),
    ]);
    assert_eq!(seen, expected);
}

/// `usage` counts the snapshot's own layer: allocated bytes and inodes
/// (its root directory included), hard links once.
pub fn usage_counts_own_layer(make: Make<'_>) {
    const MIB: u64 = 1024 * 1024;
    let f = Fixture::new(make);
    f.layer("c", None, |p| {
        fs::write(p.join("big"), vec![7u8; MIB as usize]).unwrap();
        fs::write(p.join("small"), "small").unwrap();
        fs::create_dir(p.join("d")).unwrap();
        fs::hard_link(p.join("big"), p.join("d/big-link")).unwrap();
    });
    let s = f.snap();
    let u = s.usage("c").unwrap();
    assert_eq!(u.inodes, 4, "root, big (linked twice), small, d: {u:?}");
    assert!(u.size >= MIB && u.size < 2 * MIB, "{u:?}");

    s.prepare("child", Some("c"), Labels::new()).unwrap();
    let m = f.mount(&s.mounts("child").unwrap(), "child");
    fs::write(m.join("new"), vec![1u8; 64 * 1024]).unwrap();
    m.unmount();
    let u = s.usage("child").unwrap();
    assert_eq!(u.inodes, 2, "root and new only, not the parent's: {u:?}");
    assert!(u.size >= 64 * 1024 && u.size < MIB, "{u:?}");

    s.view("v", Some("c"), Labels::new()).unwrap();
    let u = s.usage("v").unwrap();
    assert!(
        u.inodes <= 1 && u.size < 64 * 1024,
        "a view owns nothing: {u:?}"
    );
    assert_err!(s.usage("nope"), SnapshotError::NotFound(_));
}

/// 128 stacked layers mount (the kernel's one-page option limit must be
/// handled) and show files from the bottom, middle and top.
pub fn chain_of_128_layers(make: Make<'_>) {
    let f = Fixture::new(make);
    let mut parent: Option<String> = None;
    for i in 0..128 {
        let name = format!("layer-{i:03}");
        f.layer(&name, parent.as_deref(), |p| {
            fs::write(p.join(format!("file-{i}")), i.to_string()).unwrap();
            fs::write(p.join("shared"), i.to_string()).unwrap();
        });
        parent = Some(name);
    }
    let top = parent.as_deref();
    let v = f.mount(&f.snap().view("view", top, Labels::new()).unwrap(), "view");
    assert_eq!(v.read("file-0"), "0");
    assert_eq!(v.read("file-64"), "64");
    assert_eq!(v.read("file-127"), "127");
    assert_eq!(v.read("shared"), "127");
    v.unmount();
    let m = f.mount(&f.snap().prepare("rw", top, Labels::new()).unwrap(), "rw");
    assert_eq!(m.read("file-0"), "0");
    fs::write(m.join("file-0"), "rewritten").unwrap();
    assert_eq!(m.read("file-0"), "rewritten");
    m.unmount();
    let v = f.mount(
        &f.snap()
            .view("bottom", Some("layer-000"), Labels::new())
            .unwrap(),
        "b",
    );
    assert_eq!(v.read("file-0"), "0");
    assert!(!v.join("file-1").exists());
}

/// Closing and re-opening on the same root keeps every snapshot, its
/// metadata and data; new snapshots made afterwards do not disturb them.
pub fn restart_keeps_everything(make: Make<'_>) {
    let mut f = Fixture::new(make);
    f.layer("base", None, |p| fs::write(p.join("a"), "a").unwrap());
    f.layer("child", Some("base"), |p| {
        fs::write(p.join("b"), "b").unwrap()
    });
    f.snap()
        .view("v", Some("child"), labels(&[("k", "v")]))
        .unwrap();
    let m = f.mount(
        &f.snap().prepare("w", Some("child"), Labels::new()).unwrap(),
        "w",
    );
    fs::write(m.join("w-file"), "w").unwrap();
    m.unmount();
    let snapshot = |f: &Fixture<'_>| {
        let mut all = Vec::new();
        f.snap().walk(&mut |i| all.push(i.clone())).unwrap();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let usage: Vec<_> = all
            .iter()
            .map(|i| f.snap().usage(&i.name).unwrap())
            .collect();
        (all, usage)
    };
    let before = snapshot(&f);
    f.reopen();
    assert_eq!(snapshot(&f), before);

    let v = f.mount(&f.snap().mounts("v").unwrap(), "v");
    assert_eq!((v.read("a"), v.read("b")), ("a".into(), "b".into()));
    v.unmount();
    let m = f.mount(&f.snap().mounts("w").unwrap(), "w2");
    assert_eq!(m.read("w-file"), "w");
    m.unmount();
    f.snap().commit("w-c", "w", Labels::new()).unwrap();
    f.layer("new", Some("w-c"), |p| fs::write(p.join("n"), "n").unwrap());
    let v = f.mount(
        &f.snap().view("all", Some("new"), Labels::new()).unwrap(),
        "all",
    );
    for (file, content) in [("a", "a"), ("b", "b"), ("w-file", "w"), ("n", "n")] {
        assert_eq!(v.read(file), content);
    }
    v.unmount();
    assert_err!(
        f.snap().remove("child"),
        SnapshotError::FailedPrecondition { .. }
    );
}

/// Concurrent prepares and removes on one parent keep the metadata exact:
/// afterwards the parent has no children left and can be removed.
pub fn concurrent_prepare_and_remove(make: Make<'_>) {
    let f = Fixture::new(make);
    f.layer("base", None, |p| fs::write(p.join("f"), "f").unwrap());
    let s = f.snap();
    std::thread::scope(|scope| {
        for t in 0..8 {
            scope.spawn(move || {
                for i in 0..10 {
                    let key = format!("t{t}-{i}");
                    if i % 2 == 0 {
                        s.prepare(&key, Some("base"), Labels::new()).unwrap();
                    } else {
                        s.view(&key, Some("base"), Labels::new()).unwrap();
                    }
                    // Everyone races for the same name: exactly one wins.
                    match s.prepare("contended", Some("base"), Labels::new()) {
                        Ok(_) | Err(SnapshotError::AlreadyExists(_)) => {}
                        Err(e) => panic!("prepare contended: {e}"),
                    }
                }
            });
        }
    });
    let mut n = 0;
    s.walk(&mut |_| n += 1).unwrap();
    assert_eq!(n, 1 + 80 + 1);
    assert_err!(s.remove("base"), SnapshotError::FailedPrecondition { .. });
    std::thread::scope(|scope| {
        for t in 0..8 {
            scope.spawn(move || {
                for i in 0..10 {
                    s.remove(&format!("t{t}-{i}")).unwrap();
                }
            });
        }
    });
    s.remove("contended").unwrap();
    s.remove("base").unwrap();
}

/// Every mount a snapshotter returns is `nosuid,nodev` on the host: what a
/// container or an image puts in a snapshot (a setuid-root shell, a node
/// for a host disk) must give nobody on the host anything. The runtime
/// gives the container's own copy of its root mount those back.
pub fn mounts_are_nosuid_nodev(make: Make<'_>) {
    let f = Fixture::new(make);
    f.layer("one", None, |d| fs::write(d.join("a"), "a").unwrap());
    f.layer("two", Some("one"), |d| fs::write(d.join("b"), "b").unwrap());
    for (key, parent, view) in [
        ("empty-active", None, false),
        ("child-active", Some("two"), false),
        ("one-view", Some("one"), true),
        ("two-view", Some("two"), true),
        ("empty-view", None, true),
    ] {
        let mounts = if view {
            f.snap().view(key, parent, Labels::new())
        } else {
            f.snap().prepare(key, parent, Labels::new())
        };
        let m = f.mount(&mounts.unwrap(), key);
        let options = super::mount_options(&m.path)
            .unwrap_or_else(|| panic!("{key}: no mount at {}", m.path.display()));
        for flag in ["nosuid", "nodev"] {
            assert!(
                options.split(',').any(|o| o == flag),
                "{key} is mounted {options}, without {flag}"
            );
        }
        m.unmount();
    }
}
