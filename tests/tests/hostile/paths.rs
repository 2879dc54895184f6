//! Image paths that meet the host while a container is created: the
//! image's `VOLUME` paths (seeded into new volumes), `-v`, `--mount` and
//! `--tmpfs` targets, the working directory and `/etc/passwd`, aimed at
//! the host through `..`, absolute and relative symlinks and chains longer
//! than the kernel's 40 links. Each must resolve inside the image's root:
//! nothing of the host is copied into a volume, nothing is made on the
//! host, a refused path says why, and the daemon keeps serving. Also the
//! masked paths of a container (`/sys/devices/virtual/powercap`).

#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_e2e::Berthd;
use berth_e2e::containers::import_busybox_with;

/// The file an attack would copy out of the host.
const SECRET: &str = "berth-host-secret";

/// A host directory images aim at: `x/SECRET` and `etc/passwd` (with a
/// user and a group no image has) under `/tmp/berth-hostile-*`, readable
/// by everyone so that only the resolution keeps a container out.
struct HostTarget {
    dir: tempfile::TempDir,
}

impl HostTarget {
    fn new() -> anyhow::Result<HostTarget> {
        let dir = tempfile::Builder::new()
            .prefix("berth-hostile-")
            .tempdir_in("/tmp")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        std::fs::create_dir_all(dir.path().join("x"))?;
        std::fs::write(dir.path().join("x").join(SECRET), "host data\n")?;
        std::fs::create_dir_all(dir.path().join("etc"))?;
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nhostonly:x:4242:4242::/:/bin/sh\n",
        )?;
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nhostgrp:x:4343:hostonly\n",
        )?;
        Ok(HostTarget { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `/tmp/berth-hostile-…` as a relative path with enough `..` to climb
    /// from any container's rootfs to the host's `/`.
    fn relative(&self) -> String {
        format!(
            "{}{}",
            "../".repeat(24),
            self.path().to_string_lossy().trim_start_matches('/')
        )
    }

    /// `/../../…/tmp/berth-hostile-…`: absolute, climbing past the root.
    fn dotted(&self) -> String {
        format!("/{}", self.relative())
    }

    /// Every path under the directory, relative to it.
    fn entries(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        walk(self.path(), self.path(), &mut out);
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.insert(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            walk(base, &p, out);
        }
    }
}

/// Files named `name` anywhere under `dir` (symlinks not followed).
fn files_named(dir: &Path, name: &str) -> Vec<String> {
    let mut all = BTreeSet::new();
    walk(dir, dir, &mut all);
    all.into_iter()
        .filter(|p| Path::new(p).file_name().is_some_and(|n| n == name))
        .collect()
}

/// Nothing of the host's in any volume: not the secret, not `/etc/shadow`.
fn assert_volumes_clean(daemon: &Berthd) {
    let volumes = daemon.root.join("volumes");
    for name in [SECRET, "shadow", "hostname", "os-release"] {
        let found = files_named(&volumes, name);
        assert!(
            found.is_empty(),
            "a host file ({name}) was copied into a volume: {found:?} under {}",
            volumes.display()
        );
    }
}

/// The host directory holds what it held (x/SECRET, etc/passwd, etc/group).
fn assert_host_untouched(host: &HostTarget) {
    let want: BTreeSet<String> = ["x", "etc", "etc/passwd", "etc/group"]
        .into_iter()
        .map(String::from)
        .chain([format!("x/{SECRET}")])
        .collect();
    assert_eq!(
        host.entries(),
        want,
        "a container creation made something on the host under {}",
        host.path().display()
    );
}

/// The daemon answers and still runs a container.
fn assert_serving(daemon: &mut Berthd) -> anyhow::Result<()> {
    daemon.check_alive()?;
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        berth_e2e::containers::BUSYBOX,
        "echo",
        "still here",
    ])?;
    assert_eq!(out, "still here\n");
    Ok(())
}

/// `berth run ARGS…`, expected to fail: whether it did, and its stderr.
fn run_refused(daemon: &Berthd, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let mut all = vec!["run", "--network", "none"];
    all.extend_from_slice(args);
    let out = daemon.berth(&all)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("berth {all:?}: {}\n{stderr}", out.status);
    Ok((!out.status.success(), stderr))
}

fn symlink(target: &str, link: PathBuf) -> anyhow::Result<()> {
    Ok(std::os::unix::fs::symlink(target, link)?)
}

/// `/l0 -> /l1 -> … -> /l40 -> target`: 41 links, one more than the
/// kernel (and berth before this fix) follows.
fn chain(root: &Path, target: &str) -> anyhow::Result<()> {
    for i in 0..40 {
        symlink(&format!("/l{}", i + 1), root.join(format!("l{i}")))?;
    }
    symlink(target, root.join("l40"))
}

/// Changes made to an image's root file system before it is packed.
type MakeRoot<'a> = Box<dyn Fn(&Path) -> anyhow::Result<()> + 'a>;

fn start() -> anyhow::Result<Berthd> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    berth_e2e::containers::import_busybox(&daemon)?;
    Ok(daemon)
}

#[test]
fn image_volume_paths_with_dotdot_stay_in_the_image() -> anyhow::Result<()> {
    let host = HostTarget::new()?;
    let mut daemon = start()?;
    let up = "/..".repeat(24);
    let volumes = format!(r#"VOLUME ["{up}/etc", "{}/x"]"#, host.dotted());
    import_busybox_with(&daemon, "hostile/dotdot:1", &[&volumes], |_| Ok(()))?;
    // The image's /etc seeds the first volume; the second finds nothing.
    let out = daemon.berth_ok(&[
        "run",
        "--name",
        "dotdot",
        "--network",
        "none",
        "hostile/dotdot:1",
        "sh",
        "-c",
        &format!("cat /etc/passwd; ls -A {}/x", host.path().display()),
    ])?;
    assert!(
        out.starts_with("root:x:0:0:root:/root:/bin/sh\nnobody:"),
        "the volume on /etc holds the image's /etc:\n{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
    assert_volumes_clean(&daemon);
    assert_host_untouched(&host);
    daemon.berth_ok(&["rm", "dotdot"])?;
    assert_serving(&mut daemon)
}

#[test]
fn image_volume_paths_through_image_symlinks_stay_in_the_image() -> anyhow::Result<()> {
    let host = HostTarget::new()?;
    let mut daemon = start()?;
    let (abs, dotted, rel) = (
        host.path().to_string_lossy().into_owned(),
        host.dotted(),
        host.relative(),
    );
    import_busybox_with(
        &daemon,
        "hostile/volume-links:1",
        &[r#"VOLUME ["/abs/x", "/dotted/x", "/rel/x", "/file/x"]"#],
        |root| {
            symlink(&abs, root.join("abs"))?;
            symlink(&dotted, root.join("dotted"))?;
            symlink(&rel, root.join("rel"))?;
            // A link to a link: the last hop leaves.
            symlink("/abs", root.join("file"))
        },
    )?;
    let out = daemon.berth_ok(&[
        "run",
        "--name",
        "volume-links",
        "--network",
        "none",
        "hostile/volume-links:1",
        "sh",
        "-c",
        "ls -A /abs/x /dotted/x /rel/x /file/x",
    ])?;
    assert!(!out.contains(SECRET), "{out}");
    assert_volumes_clean(&daemon);
    assert_host_untouched(&host);
    daemon.berth_ok(&["rm", "volume-links"])?;
    assert_serving(&mut daemon)
}

#[test]
fn volume_targets_through_image_symlinks_stay_in_the_image() -> anyhow::Result<()> {
    let host = HostTarget::new()?;
    let mut daemon = start()?;
    let (abs, rel) = (host.path().to_string_lossy().into_owned(), host.relative());
    import_busybox_with(&daemon, "hostile/target-links:1", &[], |root| {
        symlink(&abs, root.join("link"))?;
        symlink(&rel, root.join("rlink"))
    })?;
    for (name, flag, value) in [
        ("named", "-v", "named-vol:/link/x"),
        ("named-rel", "-v", "named-rel-vol:/rlink/x"),
        ("named-link", "-v", "named-link-vol:/link"),
        ("anonymous", "-v", "/rlink/x"),
        (
            "mount",
            "--mount",
            "type=volume,source=mount-vol,target=/link/x",
        ),
    ] {
        let mut all = vec!["run", "--name", name, "--network", "none", flag, value];
        all.extend([
            "hostile/target-links:1",
            "sh",
            "-c",
            "ls -AR /link/ /rlink/",
        ]);
        let out = daemon.berth_ok(&all)?;
        assert!(!out.contains(SECRET), "{name}: {out}");
        assert_volumes_clean(&daemon);
        assert_host_untouched(&host);
        daemon.berth_ok(&["rm", name])?;
    }
    assert_serving(&mut daemon)
}

#[test]
fn symlink_chains_past_the_kernel_limit_make_nothing_on_the_host() -> anyhow::Result<()> {
    let host = HostTarget::new()?;
    let mut daemon = start()?;
    let abs = host.path().to_string_lossy().into_owned();
    import_busybox_with(&daemon, "hostile/chain:1", &[], |root| chain(root, &abs))?;
    import_busybox_with(
        &daemon,
        "hostile/chain-volume:1",
        &[r#"VOLUME ["/l0/made-by-volume"]"#],
        |root| chain(root, &abs),
    )?;
    let bind_source = tempfile::tempdir()?;
    let bind = format!("{}:/l0/made-by-bind", bind_source.path().display());
    for (what, args) in [
        ("an image VOLUME", vec!["hostile/chain-volume:1"]),
        (
            "a named volume",
            vec!["-v", "chain-vol:/l0/made-by-named", "hostile/chain:1"],
        ),
        (
            "an anonymous volume",
            vec!["-v", "/l0/made-by-anonymous", "hostile/chain:1"],
        ),
        ("a bind", vec!["-v", &bind, "hostile/chain:1"]),
        (
            "a tmpfs",
            vec!["--tmpfs", "/l0/made-by-tmpfs", "hostile/chain:1"],
        ),
    ] {
        let mut all = args.clone();
        all.push("true");
        let (refused, stderr) = run_refused(&daemon, &all)?;
        assert_host_untouched(&host);
        assert!(refused, "{what} on a chain of 41 links was accepted");
        assert!(
            stderr.contains("too many levels of symbolic links"),
            "{what} on a chain of 41 links: the error does not say why:\n{stderr}"
        );
    }
    // Nothing half-made: no volume, no container.
    let volumes = daemon.berth_ok(&["volume", "ls"])?;
    assert_eq!(
        volumes.lines().skip(1).count(),
        0,
        "volumes made for refused containers are left: {volumes}"
    );
    let ps = daemon.berth_ok(&["ps", "-a", "-q"])?;
    assert!(ps.trim().is_empty(), "containers left behind: {ps}");
    assert_volumes_clean(&daemon);
    assert_serving(&mut daemon)
}

#[test]
fn a_working_directory_out_of_the_root_makes_nothing_on_the_host() -> anyhow::Result<()> {
    let host = HostTarget::new()?;
    let mut daemon = start()?;
    let (abs, rel) = (host.path().to_string_lossy().into_owned(), host.relative());
    import_busybox_with(&daemon, "hostile/workdir:1", &[], |root| {
        symlink(&format!("{abs}/made-by-abs"), root.join("wabs"))?;
        symlink(&rel, root.join("wrel"))?;
        chain(root, &abs)
    })?;
    // Links that leave are followed inside the image: the directory is
    // made there, and the container starts in it.
    for (workdir, inside) in [
        ("/wabs", format!("{abs}/made-by-abs")),
        ("/wrel/made-by-rel", format!("{abs}/made-by-rel")),
    ] {
        let out = daemon.berth_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-w",
            workdir,
            "hostile/workdir:1",
            "pwd",
        ])?;
        assert_eq!(out.trim(), inside);
        assert_host_untouched(&host);
    }
    // A chain longer than the kernel's limit is refused.
    let (refused, stderr) = run_refused(
        &daemon,
        &["-w", "/l0/made-by-chain", "hostile/workdir:1", "pwd"],
    )?;
    assert_host_untouched(&host);
    assert!(
        refused,
        "a working directory on a chain of 41 links was accepted"
    );
    assert!(
        stderr.contains("too many levels of symbolic links"),
        "the error does not say why:\n{stderr}"
    );
    assert_serving(&mut daemon)
}

#[test]
fn users_come_from_the_images_passwd_never_the_hosts() -> anyhow::Result<()> {
    let host = HostTarget::new()?;
    let mut daemon = start()?;
    let etc = format!("{}/etc", host.path().display());
    let rel_etc = format!("{}/etc", host.relative());
    let dotted_passwd = format!("{}/etc/passwd", host.dotted());
    let dotted_group = format!("{}/etc/group", host.dotted());
    let images: [(&str, MakeRoot); 3] = [
        (
            "hostile/etc-abs:1",
            Box::new(|root: &Path| {
                std::fs::remove_dir_all(root.join("etc"))?;
                symlink(&etc, root.join("etc"))
            }),
        ),
        (
            "hostile/etc-rel:1",
            Box::new(|root: &Path| {
                std::fs::remove_dir_all(root.join("etc"))?;
                symlink(&rel_etc, root.join("etc"))
            }),
        ),
        (
            "hostile/passwd-link:1",
            Box::new(|root: &Path| {
                std::fs::remove_file(root.join("etc/passwd"))?;
                std::fs::remove_file(root.join("etc/group"))?;
                symlink(&dotted_passwd, root.join("etc/passwd"))?;
                symlink(&dotted_group, root.join("etc/group"))
            }),
        ),
    ];
    for (image, extra) in images {
        import_busybox_with(&daemon, image, &[], |root| extra(root))?;
        for user in ["hostonly", "0:hostgrp"] {
            let (refused, stderr) = run_refused(&daemon, &["--rm", "-u", user, image, "id"])?;
            assert!(
                refused,
                "{image} -u {user}: the host's passwd or group was read"
            );
            assert!(
                stderr.contains("unable to find"),
                "{image} -u {user}: the host's passwd or group was read:\n{stderr}"
            );
        }
        // Numeric ids need no entry and still run.
        let out = daemon.berth_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "4242",
            image,
            "id",
            "-u",
        ])?;
        assert_eq!(out.trim(), "4242");
    }
    assert_host_untouched(&host);
    assert_serving(&mut daemon)
}

#[test]
fn powercap_is_masked() -> anyhow::Result<()> {
    let mut daemon = start()?;
    let powercap = "/sys/devices/virtual/powercap";
    // Where the host has no powercap class, masking it is a no-op that
    // must not fail the container; where it has, nothing is readable.
    let out = daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "masked",
        "--network",
        "none",
        berth_e2e::containers::BUSYBOX,
        "sleep",
        "30",
    ])?;
    assert!(!out.trim().is_empty());
    let dir = PathBuf::from(
        berth_e2e::containers::inspect(&daemon, "masked")?["dir"]
            .as_str()
            .unwrap(),
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let masked: Vec<&str> = spec["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(masked.contains(&powercap), "{masked:?}");
    assert_eq!(
        berth_e2e::containers::state_of(&daemon, "masked")?,
        "running"
    );
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        berth_e2e::containers::BUSYBOX,
        "sh",
        "-c",
        &format!("cat {powercap}/*/energy_uj {powercap}/*/*/energy_uj 2>/dev/null; ls -A {powercap} 2>/dev/null; true"),
    ])?;
    assert_eq!(out, "", "energy counters readable in a container");
    daemon.berth_ok(&["rm", "-f", "masked"])?;
    assert_serving(&mut daemon)
}
