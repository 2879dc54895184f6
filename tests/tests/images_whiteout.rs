//! Whiteouts and opaque directories through pull and `berth image mount`: a hand-made
//! three-layer image (deletions of files and directories, re-creation after deletion, an
//! opaque directory, a file replaced by a directory) pushed to docker-registry with skopeo,
//! pulled, mounted and listed; and the make-image.sh fixture's own whiteout.

use berth_e2e::images::{self, ImageMount, TarBuilder};
use berth_e2e::{Berthd, DockerRegistry, RegistryOpts, fixture, skopeo};
use std::collections::BTreeMap;

fn layers() -> Vec<Vec<u8>> {
    let l1 = TarBuilder::new()
        .dir("a/", 0o755)
        .file("a/x", 0o644, b"x from layer 1\n")
        .file("a/y", 0o644, b"y from layer 1\n")
        .dir("d/", 0o755)
        .file("d/1", 0o644, b"1\n")
        .file("d/2", 0o644, b"2\n")
        .dir("d/sub/", 0o755)
        .file("d/sub/s", 0o644, b"s\n")
        .file("f", 0o644, b"f from layer 1\n")
        .dir("g/", 0o755)
        .file("g/inner", 0o644, b"inner\n")
        .dir("keep/", 0o755)
        .file("keep/k", 0o644, b"k\n")
        .file("h", 0o644, b"h is a file in layer 1\n")
        .finish();
    let l2 = TarBuilder::new()
        .file("a/.wh.x", 0o644, b"")
        .dir("d/", 0o755)
        .file("d/.wh..wh..opq", 0o644, b"")
        .file("d/3", 0o644, b"3 from layer 2\n")
        .file(".wh.f", 0o644, b"")
        .file(".wh.g", 0o644, b"")
        .dir("h/", 0o755)
        .file("h/new", 0o644, b"h is a directory in layer 2\n")
        .finish();
    let l3 = TarBuilder::new()
        .file("a/x", 0o600, b"x again, from layer 3\n")
        .file("d/.wh.3", 0o644, b"")
        .file("d/4", 0o644, b"4 from layer 3\n")
        .dir("g/", 0o700)
        .file("g/fresh", 0o644, b"fresh\n")
        .file("keep/.wh.k", 0o644, b"")
        .dir("e/", 0o755)
        .file("e/.wh..wh..opq", 0o644, b"")
        .finish();
    vec![l1, l2, l3]
}

/// path → (kind, mode, content) of every entry below the root.
fn listing(tree: &images::Tree) -> BTreeMap<String, (char, u32, Option<String>)> {
    tree.entries
        .iter()
        .filter(|(p, _)| p.as_str() != "/")
        .map(|(p, e)| (p.clone(), (e.kind, e.mode, e.sha256.clone())))
        .collect()
}

#[test]
fn whiteouts_and_opaque_directories_in_a_mounted_image() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let image = images::write_layout(&tmp.path().join("layout"), "v1", &layers(), None)?;
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let src = format!("{}/e2e/whiteouts:v1", reg.host());
    skopeo::copy(&image.oci_ref(), &format!("docker://{src}"), None, None)?;
    daemon.berth_ok(&["pull", &src])?;
    assert_eq!(images::snapshot_ids(&daemon.root).len(), 3);

    let mount = ImageMount::new(&daemon, &src)?;
    let tree = images::scan(&mount.dir)?;
    let got = listing(&tree);
    let h = |s: &str| Some(berth_e2e::sha256_digest(s.as_bytes()));
    let expected: BTreeMap<String, (char, u32, Option<String>)> = [
        ("/a", ('d', 0o755, None)),
        ("/a/x", ('f', 0o600, h("x again, from layer 3\n"))),
        ("/a/y", ('f', 0o644, h("y from layer 1\n"))),
        ("/d", ('d', 0o755, None)),
        ("/d/4", ('f', 0o644, h("4 from layer 3\n"))),
        ("/e", ('d', 0o755, None)),
        ("/g", ('d', 0o700, None)),
        ("/g/fresh", ('f', 0o644, h("fresh\n"))),
        ("/h", ('d', 0o755, None)),
        ("/h/new", ('f', 0o644, h("h is a directory in layer 2\n"))),
        ("/keep", ('d', 0o755, None)),
    ]
    .into_iter()
    .map(|(p, v)| (p.to_string(), v))
    .collect();
    let mut problems = Vec::new();
    for (p, v) in &expected {
        match got.get(p) {
            None => problems.push(format!("{p}: missing, expected {v:?}")),
            Some(g) if g != v => problems.push(format!("{p}: expected {v:?}, got {g:?}")),
            Some(_) => {}
        }
    }
    for (p, g) in &got {
        if !expected.contains_key(p) {
            problems.push(format!(
                "{p}: should not exist (whited out or never there), got {g:?}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the mounted image differs from the whiteout/opaque semantics:\n{}",
        problems.join("\n")
    );
    mount.unmount()?;
    Ok(())
}

#[test]
fn fixture_whiteout_hides_the_lower_file() -> anyhow::Result<()> {
    let image = fixture::small()?;
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let src = format!("{}/e2e/fixture:v1", reg.host());
    skopeo::copy(&image.oci_ref(), &format!("docker://{src}"), None, None)?;
    daemon.berth_ok(&["pull", &src])?;
    let mount = ImageMount::new(&daemon, &src)?;
    let tree = images::scan(&mount.dir)?;
    let e = &tree.entries;
    assert!(
        !e.contains_key("/tmp/removeme"),
        "/tmp/removeme was whited out by layer 3"
    );
    assert!(e.contains_key("/tmp/kept"));
    assert_eq!(e["/tmp"].mode, 0o1777);
    assert_eq!(e["/srv/data/hello.txt"].kind, 'f');
    assert_eq!(
        e["/etc/hello-link"].link.as_deref(),
        Some("../srv/data/hello.txt")
    );
    assert_eq!(e["/bin/busybox"].mode, 0o755);
    assert_eq!(e["/bin/sh"].link.as_deref(), Some("busybox"));
    let leaked: Vec<&String> = e
        .iter()
        .filter(|(p, en)| p.contains(".wh.") || en.kind == 'c')
        .map(|(p, _)| p)
        .collect();
    assert!(
        leaked.is_empty(),
        "whiteout markers visible in the mount: {leaked:?}"
    );
    Ok(())
}
