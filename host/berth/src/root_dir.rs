//! The `--root` directory is berthd's alone: it holds the registry's token
//! signing key and password hashes (`state/`), containers' environments
//! and output (`containers/`), volume data, private images' blobs, and the
//! upper dirs of containers' root file systems, where a container may have
//! planted a setuid-root file or a device node on the host's own file
//! system. So `--root` is 0700, which alone keeps every local user out,
//! and what berth makes below it is private too (directories 0700, files
//! 0600, set at creation by each crate), in case the root is ever opened.
//!
//! An older berth made all of it 0755/0644. At start-up [`prepare`] makes
//! the root and the directories berth knows private again, and the files
//! that carry secrets (each container's `config.json`, logs, `shim.json`);
//! the state database repairs its own files when it opens. Blobs are not
//! walked (there can be many): their directories are enough. Only what
//! differs is changed, so a start-up on a repaired root costs a few stats
//! per container.
//!
//! Containers' root file systems are mounted `nosuid,nodev` on the host
//! now; one an older berth mounted without those flags (a container still
//! running across the upgrade) is remounted with them. That changes the
//! host's mount only: the container's own copy, in its namespace, keeps
//! what it had.

use std::fs::Permissions;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// What of a known directory's entries is made private too.
#[derive(Clone, Copy)]
enum Below {
    Nothing,
    /// Regular files directly inside.
    Files,
    /// Sub-directories, and the regular files directly in them.
    DirsAndTheirFiles,
    /// Sub-directories only (a volume's `_data` below them keeps the mode
    /// the container's users need).
    Dirs,
}

/// The directories berth makes under `--root`, parents first.
const KNOWN: &[(&str, Below)] = &[
    ("content", Below::Nothing),
    ("content/blobs", Below::Nothing),
    ("content/blobs/sha256", Below::Nothing),
    ("content/blobs/sha512", Below::Nothing),
    ("content/ingest", Below::Files),
    ("content/tmp", Below::Nothing),
    ("snapshots", Below::Nothing),
    ("snapshots/snapshots", Below::Nothing),
    ("containers", Below::DirsAndTheirFiles),
    ("volumes", Below::Dirs),
    ("plugins", Below::Nothing),
    ("plugins/cache", Below::Files),
    ("plugins/components", Below::Files),
    ("plugins/scan", Below::Nothing),
];

/// Directories made here, before any crate opens its part (so even a
/// first start never has them open for a moment).
const MADE_HERE: &[&str] = &["containers", "volumes", "plugins"];

/// Create `root` (0700) or make an existing one private, with what berth
/// keeps in it. Blocking: call it from a blocking thread.
pub fn prepare(root: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(root)
        .with_context(|| format!("creating --root {}", root.display()))?;
    set_mode(root, DIR_MODE)?;
    for name in MADE_HERE {
        let dir = root.join(name);
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e).with_context(|| format!("creating {}", dir.display()));
            }
            _ => {}
        }
    }
    harden_rootfs_mounts(root)?;
    for (name, below) in KNOWN {
        let dir = root.join(name);
        if !is_dir(&dir) {
            continue;
        }
        set_mode(&dir, DIR_MODE)?;
        match below {
            Below::Nothing => {}
            Below::Files => tighten_files(&dir)?,
            Below::Dirs | Below::DirsAndTheirFiles => {
                for sub in entries(&dir)? {
                    if !is_dir(&sub) {
                        continue;
                    }
                    set_mode(&sub, DIR_MODE)?;
                    if matches!(below, Below::DirsAndTheirFiles) {
                        tighten_files(&sub)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Remount `ROOT/containers/*/rootfs` mounts that lack `nosuid` or
/// `nodev` with them (a bind remount changes only this mount's flags).
fn harden_rootfs_mounts(root: &Path) -> anyhow::Result<()> {
    use nix::mount::MsFlags;
    let containers = root.join("containers");
    let table =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading the mount table")?;
    for line in table.lines() {
        let (Some(target), Some(options)) = (
            berth_mountinfo::mount_point(line),
            berth_mountinfo::mount_options(line),
        ) else {
            continue;
        };
        let is_rootfs = is_container_rootfs(&containers, &target);
        let has = |flag: &str| options.split(',').any(|o| o == flag);
        if !is_rootfs || (has("nosuid") && has("nodev")) {
            continue;
        }
        let mut flags =
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        if has("ro") {
            flags |= MsFlags::MS_RDONLY;
        }
        if has("noexec") {
            flags |= MsFlags::MS_NOEXEC;
        }
        nix::mount::mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
            .with_context(|| format!("remounting {} nosuid,nodev", target.display()))?;
        tracing::info!(
            target = %target.display(),
            "an older container root file system remounted nosuid,nodev"
        );
    }
    Ok(())
}

/// Whether `target` is `CONTAINERS/<id>/rootfs`.
fn is_container_rootfs(containers: &Path, target: &Path) -> bool {
    target.strip_prefix(containers).is_ok_and(|rest| {
        let mut parts = rest.components();
        matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(std::path::Component::Normal(_)), Some(std::path::Component::Normal(r)), None)
                if r == "rootfs"
        )
    })
}

/// Regular files directly in `dir` to 0600 (sockets, FIFOs, links and
/// directories, a mounted root file system among them, are left alone).
fn tighten_files(dir: &Path) -> anyhow::Result<()> {
    for path in entries(dir)? {
        let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if is_file {
            set_mode(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

fn entries(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let list = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    Ok(list.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

/// A directory itself, not a link to one.
fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}

/// chmod when the mode differs. A file that vanished meanwhile (a
/// container removed) is no error.
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    let now = match std::fs::symlink_metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading the mode of {}", path.display())),
    };
    if now == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode)).with_context(|| {
        format!(
            "making {} private to berthd (mode {mode:o}, was {now:o})",
            path.display()
        )
    })?;
    tracing::info!(path = %path.display(), from = format!("{now:o}"), to = format!("{mode:o}"), "made private");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails loudly")]

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn open_up(p: &Path, m: u32) {
        std::fs::set_permissions(p, Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn an_old_open_root_is_made_private_and_what_containers_need_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let c = root.join("containers/abc");
        for d in ["content/blobs/sha256", "content/ingest", "volumes/v/_data"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(c.join("etc")).unwrap();
        std::fs::create_dir_all(c.join("rootfs")).unwrap();
        for f in ["config.json", "container.log", "shim.json"] {
            std::fs::write(c.join(f), "secret").unwrap();
            open_up(&c.join(f), 0o644);
        }
        std::fs::write(c.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        open_up(&c.join("etc/hosts"), 0o644);
        std::fs::write(root.join("content/ingest/u1"), "half").unwrap();
        open_up(&root.join("content/ingest/u1"), 0o644);
        std::os::unix::fs::symlink("/etc/passwd", c.join("link")).unwrap();
        for d in [
            "",
            "content",
            "content/blobs",
            "content/blobs/sha256",
            "content/ingest",
            "containers",
            "containers/abc",
            "containers/abc/rootfs",
            "volumes",
            "volumes/v",
            "volumes/v/_data",
        ] {
            open_up(&root.join(d), 0o755);
        }

        prepare(&root).unwrap();

        for d in [
            "",
            "content",
            "content/blobs",
            "content/blobs/sha256",
            "content/ingest",
            "containers",
            "containers/abc",
            "volumes",
            "volumes/v",
            "plugins",
        ] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d:?}");
        }
        for f in [
            "containers/abc/config.json",
            "containers/abc/container.log",
            "containers/abc/shim.json",
            "content/ingest/u1",
        ] {
            assert_eq!(mode(&root.join(f)), 0o600, "{f}");
        }
        // Read by the container's users through their own mounts.
        assert_eq!(mode(&root.join("volumes/v/_data")), 0o755);
        assert_eq!(mode(&c.join("etc/hosts")), 0o644);
        // Not followed: /etc/passwd keeps its mode.
        assert_eq!(mode(Path::new("/etc/passwd")) & 0o004, 0o004);
    }

    #[test]
    fn a_new_root_is_private_from_the_start() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/new/root");
        prepare(&root).unwrap();
        for d in ["", "containers", "volumes", "plugins"] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d:?}");
        }
    }

    #[test]
    fn container_root_file_systems_are_told_from_other_mounts() {
        let c = Path::new("/var/lib/my berth/containers");
        assert!(is_container_rootfs(c, &c.join("abc/rootfs")));
        assert!(!is_container_rootfs(c, &c.join("abc/rootfs/proc")));
        assert!(!is_container_rootfs(c, &c.join("abc/etc")));
        assert!(!is_container_rootfs(c, &c.join("rootfs")));
        assert!(!is_container_rootfs(
            c,
            Path::new("/var/lib/other/abc/rootfs")
        ));
    }

    #[test]
    fn a_rootfs_under_a_root_with_a_space_is_remounted_nosuid_nodev() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("my root");
        let rootfs = root.join("containers/abc/rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &rootfs,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        let hardened = harden_rootfs_mounts(&root);
        let table = berth_mountinfo::read_own();
        let options = table
            .lines()
            .rev()
            .filter(|l| berth_mountinfo::mount_point(l).as_deref() == Some(rootfs.as_path()))
            .find_map(berth_mountinfo::mount_options)
            .map(str::to_string);
        nix::mount::umount(&rootfs).unwrap();
        hardened.unwrap();
        let options = options.unwrap();
        assert!(
            options.split(',').any(|o| o == "nosuid") && options.split(',').any(|o| o == "nodev"),
            "{options}"
        );
    }
}
