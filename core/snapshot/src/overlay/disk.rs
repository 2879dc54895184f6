//! The overlay snapshotter's file-system chores: the d_type check, disk
//! usage, and removal of directories a crash left without metadata.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::{SnapshotError, Usage};

/// overlayfs refuses (or misbehaves) on file systems whose directory
/// entries do not carry the file type: check by listing a fresh file.
pub(crate) fn check_d_type(dir: &Path) -> Result<(), SnapshotError> {
    let probe = dir.join(".d_type-check");
    if probe.exists() {
        fs::remove_dir_all(&probe).map_err(SnapshotError::io("clean up", &probe))?;
    }
    fs::create_dir(&probe).map_err(SnapshotError::io("create directory", &probe))?;
    let file = probe.join("file");
    let result = fs::write(&file, b"")
        .map_err(SnapshotError::io("create", &file))
        .and_then(|()| {
            let mut d = Dir::open(&probe, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                .map_err(|e| SnapshotError::io("open directory", &probe)(e.into()))?;
            for entry in d.iter() {
                let entry =
                    entry.map_err(|e| SnapshotError::io("read directory", &probe)(e.into()))?;
                if entry.file_name().to_bytes() == b"file" {
                    return match entry.file_type() {
                        Some(_) => Ok(()),
                        None => Err(SnapshotError::NoDType {
                            path: dir.to_path_buf(),
                        }),
                    };
                }
            }
            Err(SnapshotError::io("list", &probe)(std::io::Error::other(
                "a file just created is not listed",
            )))
        });
    let _ = fs::remove_dir_all(&probe);
    result
}

/// Whether the running kernel is at least `major.minor` (by its release,
/// e.g. `6.1.0-18-amd64`); false when it cannot be read.
pub(crate) fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(release) = fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// Bytes allocated and inodes under `dir` (itself included), each inode
/// counted once however many hard links it has.
pub(crate) fn usage(dir: &Path) -> Result<Usage, SnapshotError> {
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut usage = Usage::default();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).map_err(SnapshotError::io("stat", &path))?;
        let counted_before =
            !meta.is_dir() && meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino()));
        if !counted_before {
            // st_blocks is in 512-byte units whatever the block size.
            usage.size += meta.blocks() * 512;
            usage.inodes += 1;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path).map_err(SnapshotError::io("list", &path))? {
                let entry = entry.map_err(SnapshotError::io("list", &path))?;
                stack.push(entry.path());
            }
        }
    }
    Ok(usage)
}

/// Remove every `snapshots/ID` directory whose ID has no record: leftovers
/// of a prepare that crashed before its metadata committed, or of a remove
/// that crashed after. Returns the highest ID present afterwards.
pub(crate) fn reconcile(dir: &Path, known: &HashMap<u64, String>) -> Result<u64, SnapshotError> {
    let mut highest = 0;
    let mut present = HashSet::new();
    for entry in fs::read_dir(dir).map_err(SnapshotError::io("list", dir))? {
        let entry = entry.map_err(SnapshotError::io("list", dir))?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else {
            tracing::warn!(path = %entry.path().display(), "unexpected entry in the snapshot directory; leaving it");
            continue;
        };
        if known.contains_key(&id) {
            highest = highest.max(id);
            present.insert(id);
            continue;
        }
        let path = entry.path();
        tracing::info!(path = %path.display(), "removing snapshot directory without metadata (left by a crash)");
        fs::remove_dir_all(&path).map_err(SnapshotError::io("remove", &path))?;
    }
    for (id, key) in known {
        if !present.contains(id) {
            tracing::error!(snapshot = %key, id, "snapshot directory is missing; remove the snapshot and unpack it again");
        }
        highest = highest.max(*id);
    }
    Ok(highest)
}
