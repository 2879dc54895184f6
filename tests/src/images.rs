//! Helpers for the local image store tests: what berthd keeps on disk (snapshot directories,
//! content blobs), read-only image mounts that are always undone, file-tree scans that compare
//! two root file systems entry by entry (type, mode, owner, size, content hash, link target,
//! xattrs, hard-link groups), and hand-made OCI layouts from raw tar layers (for whiteouts and
//! malicious layers that no well-behaved tool would write).

use crate::Berthd;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `ROOT/snapshots/snapshots`: one directory per snapshot.
pub fn snapshots_dir(root: &Path) -> PathBuf {
    root.join("snapshots").join("snapshots")
}

/// `ROOT/content/blobs/sha256`: the content store's blobs.
pub fn blobs_dir(root: &Path) -> PathBuf {
    root.join("content").join("blobs").join("sha256")
}

/// Names of the entries of `dir` (empty if it does not exist).
pub fn dir_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The snapshot directory names under the daemon's root.
pub fn snapshot_ids(root: &Path) -> BTreeSet<String> {
    dir_names(&snapshots_dir(root))
}

/// Apparent bytes of every regular file under `dir`.
pub fn bytes_under(dir: &Path) -> u64 {
    walk_files(dir).iter().map(|(_, m)| m.len()).sum()
}

/// Allocated bytes under `dir`, each inode counted once (what `du -s` says).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(m) = std::fs::symlink_metadata(&d)
            && seen.insert((m.dev(), m.ino()))
        {
            total += m.blocks() * 512;
        }
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = entry.metadata() else { continue };
            if m.is_dir() {
                stack.push(entry.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

fn walk_files(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => out.push((entry.path(), m)),
                Err(_) => {}
            }
        }
    }
    out
}

/// Whether `dir` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mountpoint(dir: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(dir) else {
        return false;
    };
    berth_mountinfo::is_mount_point(&berth_mountinfo::read_own(), &canon)
}

/// `berth image mount REF DIR`, undone on drop (`berth image unmount DIR`, then `umount -l`
/// if the mount is still there, so a failing test never leaves a mount behind).
#[derive(Debug)]
pub struct ImageMount<'a> {
    daemon: &'a Berthd,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl<'a> ImageMount<'a> {
    /// Mounts `reference` on a fresh temp directory.
    pub fn new(daemon: &'a Berthd, reference: &str) -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new().prefix("e2e-mnt-").tempdir()?;
        let dir = tmp.path().join("rootfs");
        std::fs::create_dir(&dir)?;
        let guard = ImageMount {
            daemon,
            dir: dir.clone(),
            _tmp: tmp,
        };
        let dir_s = dir.to_string_lossy().into_owned();
        daemon.berth_ok(&["image", "mount", reference, &dir_s])?;
        anyhow::ensure!(
            is_mountpoint(&dir),
            "`berth image mount {reference} {dir_s}` succeeded but {dir_s} is not a mount point"
        );
        Ok(guard)
    }

    /// Unmounts now through the CLI and checks that the mount is gone.
    pub fn unmount(&self) -> anyhow::Result<()> {
        let dir_s = self.dir.to_string_lossy().into_owned();
        self.daemon.berth_ok(&["image", "unmount", &dir_s])?;
        anyhow::ensure!(
            !is_mountpoint(&self.dir),
            "`berth image unmount {dir_s}` succeeded but it is still a mount point"
        );
        Ok(())
    }
}

impl Drop for ImageMount<'_> {
    fn drop(&mut self) {
        if is_mountpoint(&self.dir) {
            let dir_s = self.dir.to_string_lossy().into_owned();
            let _ = self.daemon.berth(&["image", "unmount", &dir_s]);
        }
        // Mounts may be stacked; lazily detach whatever is left.
        for _ in 0..8 {
            if !is_mountpoint(&self.dir) {
                break;
            }
            eprintln!(
                "{} still mounted after berth image unmount: umount -l",
                self.dir.display()
            );
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// One file-system entry as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `d`, `f`, `l`, `c`, `b`, `p`, `s`.
    pub kind: char,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size and sha256 of regular files.
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// Target of symlinks.
    pub link: Option<String>,
    /// Device number of device nodes.
    pub rdev: Option<u64>,
    /// Modification time (seconds) of regular files and symlinks.
    pub mtime: Option<i64>,
    /// Every extended attribute, name to value.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// A scanned tree: relative path (`/`-rooted) to entry, plus the hard-link groups (sets of
/// paths sharing an inode, only those with two or more paths).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub entries: BTreeMap<String, Entry>,
    pub hardlinks: BTreeSet<BTreeSet<String>>,
}

/// Reads every xattr of `path` without following symlinks.
pub fn xattrs(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let mut names = vec![0u8; 4096];
    // SAFETY: c is a valid NUL-terminated path; names is a writable buffer of that length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTSUP) {
            return Ok(BTreeMap::new());
        }
        anyhow::bail!("llistxattr {}: {e}", path.display());
    }
    names.truncate(usize::try_from(n)?);
    let mut out = BTreeMap::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name)?;
        let mut value = vec![0u8; 65536];
        // SAFETY: valid NUL-terminated strings and a writable buffer of the given length.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            anyhow::bail!(
                "lgetxattr {} {}: {}",
                path.display(),
                String::from_utf8_lossy(name),
                std::io::Error::last_os_error()
            );
        }
        value.truncate(usize::try_from(len)?);
        out.insert(String::from_utf8_lossy(name).into_owned(), value);
    }
    Ok(out)
}

/// Scans the tree under `root` (not following symlinks). The root itself is `/`.
pub fn scan(root: &Path) -> anyhow::Result<Tree> {
    let mut tree = Tree::default();
    let mut inodes: HashMap<(u64, u64), BTreeSet<String>> = HashMap::new();
    let mut stack = vec![(root.to_path_buf(), "/".to_string())];
    while let Some((path, rel)) = stack.pop() {
        let m = std::fs::symlink_metadata(&path)
            .map_err(|e| anyhow::anyhow!("lstat {}: {e}", path.display()))?;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            'f'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            's'
        };
        let mut entry = Entry {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: None,
            sha256: None,
            link: None,
            rdev: None,
            mtime: None,
            xattrs: xattrs(&path)?,
        };
        match kind {
            'd' => {
                for child in std::fs::read_dir(&path)? {
                    let child = child?;
                    let name = child.file_name().to_string_lossy().into_owned();
                    let child_rel = if rel == "/" {
                        format!("/{name}")
                    } else {
                        format!("{rel}/{name}")
                    };
                    stack.push((child.path(), child_rel));
                }
            }
            'f' => {
                entry.size = Some(m.len());
                entry.sha256 = Some(crate::sha256_file(&path)?);
                entry.mtime = Some(m.mtime());
                if m.nlink() > 1 {
                    inodes
                        .entry((m.dev(), m.ino()))
                        .or_default()
                        .insert(rel.clone());
                }
            }
            'l' => {
                entry.link = Some(std::fs::read_link(&path)?.to_string_lossy().into_owned());
                entry.mtime = Some(m.mtime());
            }
            'c' | 'b' => entry.rdev = Some(m.rdev()),
            _ => {}
        }
        tree.entries.insert(rel, entry);
    }
    tree.hardlinks = inodes.into_values().filter(|s| s.len() > 1).collect();
    Ok(tree)
}

/// Human-readable differences between `expected` and `actual` (empty when they agree).
pub fn diff_trees(expected: &Tree, actual: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (path, e) in &expected.entries {
        match actual.entries.get(path) {
            None => out.push(format!("{path}: missing (expected {e:?})")),
            Some(a) if a != e => out.push(format!("{path}:\n  expected {e:?}\n  actual   {a:?}")),
            Some(_) => {}
        }
    }
    for (path, a) in &actual.entries {
        if !expected.entries.contains_key(path) {
            out.push(format!("{path}: unexpected entry {a:?}"));
        }
    }
    if expected.hardlinks != actual.hardlinks {
        out.push(format!(
            "hard-link groups differ: expected {:?}, actual {:?}",
            expected.hardlinks, actual.hardlinks
        ));
    }
    out
}

/// A minimal ustar writer for hand-made layers, including ones no honest tool writes.
#[derive(Debug, Default)]
pub struct TarBuilder {
    buf: Vec<u8>,
}

impl TarBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one entry with a raw name (written verbatim, `../` and all).
    #[allow(
        clippy::too_many_arguments,
        reason = "a tar header has that many fields"
    )]
    pub fn entry(
        &mut self,
        name: &str,
        typeflag: u8,
        mode: u32,
        uid: u32,
        gid: u32,
        link: &str,
        data: &[u8],
    ) -> &mut Self {
        assert!(name.len() <= 100 && link.len() <= 100, "name too long");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], off: usize, len: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = len - 1);
            h[off..off + len].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, u64::from(mode));
        octal(&mut h, 108, 8, u64::from(uid));
        octal(&mut h, 116, 8, u64::from(gid));
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 946_684_800);
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.entry(name, b'5', mode, 0, 0, "", &[])
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.entry(name, b'0', mode, 0, 0, "", data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', 0o777, 0, 0, target, &[])
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'1', 0o644, 0, 0, target, &[])
    }

    /// The archive with its two zero end-of-archive blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// gzip -n of `data` (GNU gzip, as make-image.sh uses).
pub fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .args(["-n", "-1", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("spawning gzip: {e}"))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("gzip stdin"))?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer panicked"))??;
    anyhow::ensure!(out.status.success(), "gzip failed: {}", out.status);
    Ok(out.stdout)
}

/// Writes an OCI layout at `dir` holding one image tagged `tag` with these uncompressed tar
/// layers (gzipped here). `diff_ids`, when given, replaces the true diffIDs in the config
/// (to make a config that lies). Returns the image.
pub fn write_layout(
    dir: &Path,
    tag: &str,
    layers: &[Vec<u8>],
    diff_ids: Option<Vec<String>>,
) -> anyhow::Result<crate::Image> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)?;
    let put = |bytes: &[u8]| -> anyhow::Result<(String, usize)> {
        let digest = crate::sha256_digest(bytes);
        std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes)?;
        Ok((digest, bytes.len()))
    };
    let mut true_diff_ids = Vec::new();
    let mut layer_descs = Vec::new();
    for tar in layers {
        true_diff_ids.push(crate::sha256_digest(tar));
        let (digest, size) = put(&gzip(tar)?)?;
        layer_descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": size,
        }));
    }
    let diff_ids = diff_ids.unwrap_or(true_diff_ids);
    let history: Vec<_> = (0..layers.len())
        .map(|i| serde_json::json!({"created": "2000-01-01T00:00:00Z", "created_by": format!("e2e layer {}", i + 1)}))
        .collect();
    let config = serde_json::json!({
        "created": "2000-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let (cfg_digest, cfg_size) = put(&serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg_size},
        "layers": layer_descs,
    });
    let (man_digest, man_size) = put(&serde_json::to_vec(&manifest)?)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man_digest,
            "size": man_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    crate::Image::open(dir, tag)
}

/// Sets an xattr on `path` without following symlinks.
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> anyhow::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let n = CString::new(name)?;
    // SAFETY: valid NUL-terminated strings and a readable buffer of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        anyhow::bail!(
            "lsetxattr {} {name}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
