//! A local user without privileges (`nobody`, through `setpriv`) against
//! what berth keeps on the host: the data directory (token signing key,
//! password hashes, containers' environments and output, volume data,
//! blobs), setuid files and device nodes a container or an image plants in
//! a root file system mounted on the host, and images mounted with
//! `berth image mount`.
//!
//! Temp directories are 0700, which alone would keep `nobody` out of
//! everything below them and make these tests pass for nothing: each test
//! opens its temp directory (0755), so only berth's own modes and mount
//! flags stand between `nobody` and the files.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox, logs};
use berth_e2e::images::{ImageMount, blobs_dir};

const SECRET: &str = "hunter2-local-user-e2e";

/// Runs `argv` as `nobody`/`nogroup` with no supplementary groups.
fn as_nobody(argv: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(argv)
        .output()
        .unwrap_or_else(|e| panic!("running setpriv (util-linux, scripts/deps.sh): {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `nobody` can neither list nor read `path`.
fn closed_to_nobody(path: &Path) {
    let p = path.to_string_lossy();
    let argv: &[&str] = if path.is_dir() {
        &["ls", "-la", &p]
    } else {
        &["cat", &p]
    };
    let out = as_nobody(argv);
    assert!(
        !out.status.success(),
        "nobody could run {argv:?}:\n{}",
        text(&out)
    );
    assert!(!text(&out).contains(SECRET), "{}", text(&out));
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// A daemon whose temp directory `nobody` may traverse, with busybox.
fn open_daemon() -> anyhow::Result<Berthd> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    chmod(daemon.dir(), 0o755);
    import_busybox(&daemon)?;
    Ok(daemon)
}

/// `run -d` with a secret in its environment, output and a named volume;
/// returns its directory once the secret is in the log.
fn secret_container(daemon: &Berthd, volume: &str) -> anyhow::Result<PathBuf> {
    let id = daemon.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-e",
        &format!("SECRET={SECRET}"),
        "-v",
        &format!("{volume}:/data"),
        BUSYBOX,
        "sh",
        "-c",
        "echo \"$SECRET\"; echo \"$SECRET\" > /data/secret; sleep 600",
    ])?;
    let id = id.trim().to_string();
    berth_e2e::net::wait_until("the secret in the log", Duration::from_secs(20), || {
        Ok(logs(daemon, &[&id])?.0.contains(SECRET))
    })?;
    Ok(daemon.root.join("containers").join(id))
}

fn any_blob(root: &Path) -> PathBuf {
    std::fs::read_dir(blobs_dir(root))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap_or_else(|| panic!("no blob under {}", root.display()))
}

/// What a local user must never read, with the container's secret in
/// several of them.
fn secrets(root: &Path, container: &Path, volume: &str) -> Vec<PathBuf> {
    vec![
        root.join("state/db"),
        root.join("state"),
        container.join("config.json"),
        container.join("shim.json"),
        container.join("container.log"),
        container.to_path_buf(),
        root.join("volumes").join(volume).join("_data/secret"),
        root.join("content/blobs/sha256"),
        any_blob(root),
    ]
}

#[test]
fn the_data_directory_is_closed_to_local_users() -> anyhow::Result<()> {
    let daemon = open_daemon()?;
    let root = daemon.root.clone();
    let container = secret_container(&daemon, "lu-secret")?;
    let closed = secrets(&root, &container, "lu-secret");
    closed_to_nobody(&root);
    for p in &closed {
        closed_to_nobody(p);
    }
    // Defence in depth: with --root opened by mistake (an admin's chmod),
    // what berth made below it still keeps nobody out.
    chmod(&root, 0o755);
    for p in &closed {
        closed_to_nobody(p);
    }
    chmod(&root, 0o700);
    for (p, want) in [
        (root.clone(), 0o700),
        (root.join("state"), 0o700),
        (root.join("state/db"), 0o600),
        (root.join("containers"), 0o700),
        (container.clone(), 0o700),
        (container.join("config.json"), 0o600),
        (container.join("shim.json"), 0o600),
        (container.join("container.log"), 0o600),
        (root.join("volumes"), 0o700),
        (root.join("volumes/lu-secret"), 0o700),
        (root.join("content"), 0o700),
        (blobs_dir(&root), 0o700),
        (any_blob(&root), 0o600),
        (root.join("snapshots"), 0o700),
    ] {
        assert_eq!(mode(&p), want, "mode of {}", p.display());
    }
    // The container itself still reads its volume, as a non-root user too.
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "65534",
        "-v",
        "lu-secret:/data",
        BUSYBOX,
        "cat",
        "/data/secret",
    ])?;
    Ok(())
}

/// Every file and directory under `dir` (symlinks aside, whose mode means nothing) that
/// group or others may use, but the ones shared on purpose: a container's `etc/` files
/// (0644) and the roots it sees, snapshot `fs` directories and volume `_data` (0755), whose
/// contents are the image's and the container's own.
fn open_to_others(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let parent = dir.file_name().unwrap().to_string_lossy().into_owned();
        let shared_dir = matches!(name.as_str(), "rootfs" | "_data" | "fs");
        let shared_file = parent == "etc"
            && matches!(name.as_str(), "hosts" | "hostname" | "resolv.conf")
            && meta.mode() & 0o7777 == 0o644;
        if meta.mode() & 0o077 != 0 && !shared_dir && !shared_file {
            out.push(format!("{:o} {}", meta.mode() & 0o7777, path.display()));
        }
        if meta.is_dir() && !shared_dir {
            open_to_others(&path, out);
        }
    }
}

#[test]
fn what_berthd_creates_under_root_is_private_by_default() -> anyhow::Result<()> {
    // berthd inherits a permissive umask here: only its own modes count.
    let daemon = open_daemon()?;
    let root = daemon.root.clone();
    secret_container(&daemon, "lu-private")?;
    let dns = daemon.berth_ok(&[
        "run",
        "-d",
        "--dns",
        "192.0.2.53",
        "--add-host",
        "db:192.0.2.7",
        "-v",
        "/data",
        BUSYBOX,
        "sleep",
        "600",
    ])?;
    // berthd's own default is private; containers keep the usual 0022.
    let pid = daemon
        .pid()
        .ok_or_else(|| anyhow::anyhow!("berthd has no pid"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let umask = status
        .lines()
        .find(|l| l.starts_with("Umask:"))
        .unwrap_or_default();
    assert_eq!(umask, "Umask:\t0077", "berthd's umask");
    let inside = daemon.berth_ok(&["exec", dns.trim(), "sh", "-c", "umask"])?;
    assert_eq!(inside.trim(), "0022", "the container's umask");
    daemon.berth_ok(&["run", "--rm", "--network", "none", BUSYBOX, "true"])?;
    // The rest of what berthd keeps: a user-defined network, a copy into a
    // container, an exec, a push to its registry and a pull back, a saved
    // archive loaded again, a named volume, and (below) a plugin.
    daemon.berth_ok(&["network", "create", "lu-net"])?;
    let id = daemon.berth_ok(&["run", "-d", "--network", "lu-net", BUSYBOX, "sleep", "600"])?;
    let id = id.trim().to_string();
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("note");
    std::fs::write(&file, "note")?;
    let file_s = file.to_string_lossy().into_owned();
    daemon.berth_ok(&["cp", &file_s, &format!("{id}:/tmp/note")])?;
    daemon.berth_ok(&["exec", &id, "cat", "/tmp/note"])?;
    let pushed = format!("{}/e2e/private:v1", daemon.registry());
    daemon.berth_ok(&["tag", BUSYBOX, &pushed])?;
    daemon.berth_ok(&["push", &pushed])?;
    daemon.berth_ok(&["rmi", &pushed])?;
    daemon.berth_ok(&["pull", &pushed])?;
    let archive = tmp.path().join("saved.tar");
    let archive_s = archive.to_string_lossy().into_owned();
    daemon.berth_ok(&["save", "-o", &archive_s, &pushed])?;
    daemon.berth_ok(&["load", "-i", &archive_s])?;
    daemon.berth_ok(&["volume", "create", "lu-named"])?;
    // Containers' users still read what is shared with them on purpose.
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "lu-net",
        "-u",
        "65534",
        "-v",
        "lu-named:/named",
        "-v",
        "/anon",
        BUSYBOX,
        "sh",
        "-c",
        "ls / /named /anon >/dev/null && cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null",
    ])?;
    // Last: its hook holds every later operation.
    daemon.berth_ok(&[
        "plugin",
        "install",
        berth_plugin_artifacts::FIXTURE_SPIN,
        "--name",
        "spin",
    ])?;
    let mut open = Vec::new();
    open_to_others(&root, &mut open);
    // Its hook would refuse the removals berthd's guard makes.
    daemon.berth_ok(&["plugin", "rm", "spin"])?;
    daemon.berth_ok(&["rm", "-f", &id])?;
    daemon.berth_ok(&["network", "rm", "lu-net"])?;
    assert!(
        open.is_empty(),
        "open to group or others under --root:\n{}",
        open.join("\n")
    );
    Ok(())
}

#[test]
fn an_older_open_root_is_made_private_at_start_up() -> anyhow::Result<()> {
    let mut daemon = open_daemon()?;
    let root = daemon.root.clone();
    let container = secret_container(&daemon, "lu-old")?;
    daemon.stop();
    // What an older berth left: every directory 0755 and file 0644 (the
    // layers' own files and the running container's mount left as they are).
    let status = Command::new("find")
        .arg(&root)
        .args([
            "-xdev",
            "(",
            "-path",
            "*/snapshots/snapshots/*",
            "-prune",
            ")",
            "-o",
            "-type",
            "d",
            "-exec",
            "chmod",
            "755",
            "{}",
            "+",
            "-o",
            "-type",
            "f",
            "-exec",
            "chmod",
            "644",
            "{}",
            "+",
        ])
        .status()?;
    assert!(status.success());
    assert_eq!(mode(&container.join("config.json")), 0o644);
    let out = as_nobody(&["cat", &container.join("config.json").to_string_lossy()]);
    assert!(
        text(&out).contains(SECRET),
        "the old root is open: {}",
        text(&out)
    );

    daemon.restart()?;
    closed_to_nobody(&root);
    chmod(&root, 0o755);
    // Blobs are not walked at start-up: their directories keep them.
    for p in secrets(&root, &container, "lu-old") {
        closed_to_nobody(&p);
    }
    chmod(&root, 0o700);
    for (p, want) in [
        (root.clone(), 0o700),
        (root.join("state"), 0o700),
        (root.join("state/db"), 0o600),
        (root.join("containers"), 0o700),
        (container.clone(), 0o700),
        (container.join("config.json"), 0o600),
        (container.join("container.log"), 0o600),
        (root.join("volumes"), 0o700),
        (root.join("volumes/lu-old"), 0o700),
        (root.join("content"), 0o700),
        (blobs_dir(&root), 0o700),
        (root.join("snapshots"), 0o700),
    ] {
        assert_eq!(mode(&p), want, "mode of {} after the repair", p.display());
    }
    // The container ran on through it all.
    let id = container
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(logs(&daemon, &[&id])?.0.contains(SECRET));
    Ok(())
}

/// A bind mount of `source` on a fresh directory `nobody` can reach,
/// detached on drop: what "a local user reaches the path" looks like.
struct Reach {
    dir: PathBuf,
}

impl Reach {
    fn new(parent: &Path, source: &Path) -> anyhow::Result<Reach> {
        let dir = parent.join("reach");
        std::fs::create_dir(&dir)?;
        chmod(&dir, 0o755);
        berth_e2e::run_ok(Command::new("mount").arg("--bind").arg(source).arg(&dir))?;
        Ok(Reach { dir })
    }
}

impl Drop for Reach {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The per-mount options (`rw,nosuid,nodev,relatime`) of the top-most
/// mount at `path`.
fn mount_options(path: &Path) -> String {
    let target = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(target.as_ref()))
        .and_then(|l| l.split(' ').nth(5).map(str::to_owned))
        .unwrap_or_else(|| panic!("nothing is mounted at {target}"))
}

fn assert_nosuid_nodev(path: &Path) {
    let options = mount_options(path);
    for flag in ["nosuid", "nodev"] {
        assert!(
            options.split(',').any(|o| o == flag),
            "{} is mounted {options}, without {flag}",
            path.display()
        );
    }
}

/// The effective uid `nobody` gets by running `program` (coreutils `id -u`
/// reports the effective one).
fn euid_of_nobody_running(program: &Path) -> String {
    let out = as_nobody(&[&program.to_string_lossy(), "-u"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `nobody` writing to a world-writable null device node at `node`.
fn nobody_writes_to(node: &Path) -> Output {
    as_nobody(&["sh", "-c", &format!("echo x > '{}'", node.display())])
}

#[test]
fn a_setuid_file_or_device_node_a_container_plants_is_inert_on_the_host() -> anyhow::Result<()> {
    let daemon = open_daemon()?;
    // The host's own `id` goes in through a read-only bind; the container
    // (root, with CAP_MKNOD as Docker's default) plants a setuid-root copy
    // and a world-writable device node in its root file system.
    let id = daemon.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-v",
        "/usr/bin/id:/host-id:ro",
        BUSYBOX,
        "sh",
        "-c",
        "cp /host-id /planted-id && chown 0:0 /planted-id && chmod 4755 /planted-id \
         && mknod /planted-null c 1 3 && chmod 666 /planted-null && touch /planted && sleep 600",
    ])?;
    let rootfs = daemon
        .root
        .join("containers")
        .join(id.trim())
        .join("rootfs");
    berth_e2e::net::wait_until("the container to plant", Duration::from_secs(20), || {
        Ok(rootfs.join("planted").exists())
    })?;
    let planted = std::fs::metadata(rootfs.join("planted-id"))?;
    assert_eq!((planted.uid(), planted.mode() & 0o7777), (0, 0o4755));

    assert_nosuid_nodev(&rootfs);
    // Root on the host opening the node through the mount is refused too.
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .open(rootfs.join("planted-null"));
    assert!(
        opened.is_err(),
        "root on the host opened a planted device node"
    );

    // Even if nobody could reach the path (a bind elsewhere, a leaked fd),
    // the setuid bit gives nothing and the node does not open.
    let reach = Reach::new(daemon.dir(), &rootfs)?;
    assert_eq!(
        euid_of_nobody_running(&reach.dir.join("planted-id")),
        "65534"
    );
    let out = nobody_writes_to(&reach.dir.join("planted-null"));
    assert!(
        !out.status.success(),
        "nobody wrote to a device node planted by a container"
    );
    // The upper dir, where those files really are on the host's file
    // system, is out of reach.
    for snapshot in berth_e2e::images::snapshot_ids(&daemon.root) {
        closed_to_nobody(
            &berth_e2e::images::snapshots_dir(&daemon.root)
                .join(snapshot)
                .join("fs"),
        );
    }
    Ok(())
}

#[test]
fn setuid_binaries_still_work_inside_a_container() -> anyhow::Result<()> {
    let daemon = open_daemon()?;
    // Root's password is empty, so busybox `su` run as nobody needs no
    // password, only its setuid bit.
    let name = "lu-suid";
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "mkdir /suid && cp /bin/busybox /suid/busybox && chmod 4755 /suid/busybox \
         && echo 'root::0:0:root:/root:/bin/sh' > /etc/passwd \
         && echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> /etc/passwd && touch /ready \
         && sleep 600",
    ])?;
    berth_e2e::net::wait_until("the setuid busybox", Duration::from_secs(20), || {
        Ok(daemon
            .berth(&["exec", name, "test", "-e", "/ready"])?
            .status
            .success())
    })?;
    let out = daemon.berth_ok(&[
        "exec",
        "-u",
        "65534",
        name,
        "/suid/busybox",
        "su",
        "-c",
        "id -u",
        "root",
    ])?;
    assert_eq!(out.trim(), "0", "setuid su inside the container: {out}");
    let plain = daemon.berth_ok(&["exec", "-u", "65534", name, "id", "-u"])?;
    assert_eq!(plain.trim(), "65534");
    Ok(())
}

/// A root file system with a setuid-root copy of the host's `id` and a
/// world-writable null device node, imported as `reference`.
fn import_planted_image(daemon: &Berthd, reference: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs)?;
    std::fs::copy("/usr/bin/id", rootfs.join("planted-id"))?;
    chmod(&rootfs.join("planted-id"), 0o4755);
    berth_e2e::run_ok(
        Command::new("mknod")
            .arg("-m")
            .arg("666")
            .arg(rootfs.join("planted-null"))
            .args(["c", "1", "3"]),
    )?;
    let tarball = dir.path().join("rootfs.tar.gz");
    berth_e2e::run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-czf")
            .arg(&tarball)
            .arg("."),
    )?;
    daemon.berth_ok(&[
        "import",
        "-c",
        r#"CMD ["/planted-id"]"#,
        &tarball.to_string_lossy(),
        reference,
    ])?;
    Ok(())
}

#[test]
fn an_image_mounted_on_the_host_is_nosuid_nodev() -> anyhow::Result<()> {
    let daemon = open_daemon()?;
    import_planted_image(&daemon, "e2e/planted:1")?;
    let mount = ImageMount::new(&daemon, "e2e/planted:1")?;
    if let Some(parent) = mount.dir.parent() {
        chmod(parent, 0o755);
    }
    let options = mount_options(&mount.dir);
    assert!(options.split(',').any(|o| o == "ro"), "{options}");
    assert_nosuid_nodev(&mount.dir);
    let planted = std::fs::metadata(mount.dir.join("planted-id"))?;
    assert_eq!((planted.uid(), planted.mode() & 0o7777), (0, 0o4755));
    assert_eq!(
        euid_of_nobody_running(&mount.dir.join("planted-id")),
        "65534"
    );
    let out = nobody_writes_to(&mount.dir.join("planted-null"));
    assert!(
        !out.status.success(),
        "nobody wrote to a device node of a mounted image"
    );
    mount.unmount()?;
    Ok(())
}

/// `POST /v1/images/mount` straight over the socket (the CLI resolves
/// links before it asks): (status, body).
fn mount_request(daemon: &Berthd, reference: &str, target: &Path) -> (u16, String) {
    use std::io::{Read, Write};
    let body = serde_json::json!({ "reference": reference, "target": target }).to_string();
    let mut s = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    write!(
        s,
        "POST /v1/images/mount HTTP/1.1\r\nHost: berthd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn an_image_is_mounted_only_on_an_empty_directory_root_owns() -> anyhow::Result<()> {
    let daemon = open_daemon()?;
    let tmp = tempfile::tempdir()?;
    let refused = |target: &Path, why: &str| {
        let (status, text) = mount_request(&daemon, BUSYBOX, target);
        let mounted = berth_e2e::images::is_mountpoint(target);
        if mounted {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
        assert_eq!(status, 400, "mounting on {}: {text}", target.display());
        assert!(text.contains(why), "{text}");
        assert!(!mounted, "{} was mounted on", target.display());
    };
    // Over files: they would be hidden from the host.
    let full = tmp.path().join("full");
    std::fs::create_dir(&full)?;
    std::fs::write(full.join("keep"), "mine")?;
    refused(&full, "not empty");
    // On a directory another user owns (and could swap for a link).
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs)?;
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534))?;
    refused(&theirs, "owned by uid 65534");
    // Through a symbolic link, which could point anywhere by then.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty)?;
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&empty, &link)?;
    refused(&link, "symbolic link");
    // In a directory others may write to.
    let open = tmp.path().join("open");
    std::fs::create_dir_all(open.join("mnt"))?;
    chmod(&open, 0o777);
    refused(&open.join("mnt"), "writable by others");
    // The daemon keeps serving, and an empty root-owned directory works.
    let (status, text) = mount_request(&daemon, BUSYBOX, &empty);
    assert_eq!(status, 204, "{text}");
    assert!(berth_e2e::images::is_mountpoint(&empty));
    daemon.berth_ok(&["image", "unmount", &empty.to_string_lossy()])?;
    Ok(())
}
