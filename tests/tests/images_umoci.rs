#![allow(clippy::unwrap_used, reason = "test code")]
//! A foreign image made with umoci (`init`, `new`, `unpack`, populate, `repack`), pushed to
//! docker-registry with skopeo, pulled by berth and mounted with `berth image mount`: the
//! mounted tree equals what `umoci unpack` makes of the same image, entry by entry (type,
//! mode, uid, gid, size, content hash, mtime, link target, xattrs, hard-link groups).

use berth_e2e::images::{self, ImageMount};
use berth_e2e::{Berthd, DockerRegistry, RegistryOpts, run_ok, skopeo};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn chmod(p: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn chown(p: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
    Ok(())
}

/// Fills a rootfs with what the test compares.
fn populate(r: &Path) -> anyhow::Result<()> {
    for d in ["bin", "data/sub/deeper", "empty", "etc"] {
        std::fs::create_dir_all(r.join(d))?;
    }
    std::fs::write(r.join("bin/tool"), b"#!/bin/sh\necho tool\n")?;
    chmod(&r.join("bin/tool"), 0o751)?;
    std::fs::write(r.join("bin/suid"), b"setuid program\n")?;
    chmod(&r.join("bin/suid"), 0o4755)?;
    std::fs::write(r.join("bin/sgid"), b"setgid program\n")?;
    chmod(&r.join("bin/sgid"), 0o2711)?;
    std::fs::write(r.join("data/owned"), b"owned by 1234:5678\n")?;
    chown(&r.join("data/owned"), 1234, 5678)?;
    chown(&r.join("data/sub"), 1234, 5678)?;
    chmod(&r.join("data/sub"), 0o750)?;
    chmod(&r.join("empty"), 0o1777)?;
    std::fs::write(r.join("data/sub/deeper/big"), vec![0x5au8; 300_000])?;
    std::fs::write(r.join("data/zero"), b"")?;
    std::fs::write(r.join("etc/hostname"), b"umoci\n")?;
    chmod(&r.join("etc/hostname"), 0o600)?;
    std::os::unix::fs::symlink("../bin/tool", r.join("data/link"))?;
    std::os::unix::fs::symlink("/etc/hostname", r.join("data/abs-link"))?;
    std::os::unix::fs::symlink("dangling-target", r.join("data/dangling"))?;
    chown(&r.join("data/link"), 1234, 5678)?;
    std::fs::hard_link(r.join("data/owned"), r.join("data/hard"))?;
    std::fs::hard_link(r.join("data/owned"), r.join("bin/hard-too"))?;
    images::set_xattr(&r.join("data/owned"), "user.berth", b"yes")?;
    images::set_xattr(&r.join("data/sub"), "user.dir", b"on a directory")?;
    run_ok(Command::new("mkfifo").arg(r.join("data/fifo")))?;
    let setcap = Command::new("setcap")
        .arg("cap_net_bind_service=+ep")
        .arg(r.join("bin/tool"))
        .output();
    match setcap {
        Ok(o) if o.status.success() => {}
        Ok(o) => anyhow::bail!(
            "setcap failed: {}; security.capability cannot be tested",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => anyhow::bail!(
            "setcap not runnable ({e}): apt-get install libcap2-bin; security.capability cannot be tested"
        ),
    }
    Ok(())
}

#[test]
fn umoci_image_pulled_and_mounted_matches_umoci_unpack() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("layout");
    let layout_s = layout.to_string_lossy().into_owned();
    let work_bundle = tmp.path().join("work-bundle");
    let ref_bundle = tmp.path().join("ref-bundle");
    run_ok(Command::new("umoci").args(["init", "--layout", &layout_s]))?;
    run_ok(Command::new("umoci").args(["new", "--image", &format!("{layout_s}:base")]))?;
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{layout_s}:base")])
            .arg(&work_bundle),
    )?;
    populate(&work_bundle.join("rootfs"))?;
    run_ok(
        Command::new("umoci")
            .args(["repack", "--image", &format!("{layout_s}:latest")])
            .arg(&work_bundle),
    )?;
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{layout_s}:latest")])
            .arg(&ref_bundle),
    )?;
    let expected = images::scan(&ref_bundle.join("rootfs"))?;

    // The reference really has what the test means to compare.
    let e = &expected.entries;
    assert_eq!(e["/bin/tool"].mode, 0o751);
    assert_eq!(e["/bin/suid"].mode, 0o4755);
    assert_eq!((e["/data/owned"].uid, e["/data/owned"].gid), (1234, 5678));
    assert_eq!(e["/data/link"].link.as_deref(), Some("../bin/tool"));
    assert_eq!(
        e["/data/owned"].xattrs.get("user.berth").map(Vec::as_slice),
        Some(&b"yes"[..])
    );
    assert!(
        e["/bin/tool"].xattrs.contains_key("security.capability"),
        "umoci unpack lost security.capability: {:?}",
        e["/bin/tool"].xattrs
    );
    assert!(
        expected
            .hardlinks
            .iter()
            .any(|g| g.len() == 3 && g.contains("/data/owned")),
        "umoci unpack lost the hard links: {:?}",
        expected.hardlinks
    );
    assert_eq!(e["/data/fifo"].kind, 'p');

    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let src = format!("{}/e2e/umoci:v1", reg.host());
    skopeo::copy(
        &format!("oci:{layout_s}:latest"),
        &format!("docker://{src}"),
        None,
        None,
    )?;
    daemon.berth_ok(&["pull", &src])?;

    let mount = ImageMount::new(&daemon, &src)?;
    let actual = images::scan(&mount.dir)?;
    let diffs = images::diff_trees(&expected, &actual);
    eprintln!(
        "compared {} entries ({} xattrs, {} hard-link groups)",
        actual.entries.len(),
        actual
            .entries
            .values()
            .map(|e| e.xattrs.len())
            .sum::<usize>(),
        actual.hardlinks.len()
    );
    assert!(
        diffs.is_empty(),
        "berth's mounted view differs from umoci unpack's rootfs in {} place(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );

    // Read-only: the view refuses writes.
    let err = std::fs::write(mount.dir.join("data/new"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EROFS),
        "writing into the mounted image: {err}"
    );
    mount.unmount()?;
    assert!(
        std::fs::read_dir(&mount.dir)?.next().is_none(),
        "after unmount the directory should be empty again"
    );
    Ok(())
}
