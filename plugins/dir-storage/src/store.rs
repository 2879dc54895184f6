//! The directory layout and its operations: `ROOT/blobs/ALG/HEX` for blobs, `ROOT/tmp/` for
//! writes in progress (same file system, so the commit is one `rename`).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use berth_plugin_sdk::prelude::*;

/// The most one `read` returns, whatever is asked (the host asks for at most 1 MiB).
pub const MAX_READ: u32 = 4 << 20;

/// Temp files older than this are leftovers of a crash, removed on first use. Younger ones may
/// belong to another instance writing right now.
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);

const ALGORITHMS: [(&str, usize); 2] = [("sha256", 64), ("sha512", 128)];

fn io_error(what: &str, path: &Path, err: &io::Error) -> StorageError {
    StorageError::Io(format!("{what} {}: {err}", path.display()))
}

/// Splits and checks a digest, so no digest can name a path outside the store.
pub fn parse_digest(digest: &str) -> Result<(&str, &str), StorageError> {
    let invalid = || {
        StorageError::Io(format!(
            "invalid digest {digest:?}: expected sha256:<64 hex> or sha512:<128 hex>"
        ))
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
    let length = ALGORITHMS
        .iter()
        .find(|(name, _)| *name == algorithm)
        .map(|(_, length)| *length)
        .ok_or_else(invalid)?;
    let lower_hex = hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != length || !lower_hex {
        return Err(invalid());
    }
    Ok((algorithm, hex))
}

/// A blob directory.
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// The store under `root`, which must exist (the operator grants it read-write).
    pub fn open(root: impl Into<PathBuf>) -> Result<DirStore, StorageError> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(|err| {
            StorageError::InvalidConfig(format!(
                "storage root {}: {err}; create it and grant it to the plugin read-write",
                root.display()
            ))
        })?;
        if !meta.is_dir() {
            return Err(StorageError::InvalidConfig(format!(
                "storage root {} is not a directory",
                root.display()
            )));
        }
        for dir in ["blobs", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|err| io_error("creating", &path, &err))?;
        }
        let store = DirStore { root };
        store.remove_stale_temps();
        Ok(store)
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, StorageError> {
        let (algorithm, hex) = parse_digest(digest)?;
        Ok(self.root.join("blobs").join(algorithm).join(hex))
    }

    fn remove_stale_temps(&self) {
        let tmp = self.root.join("tmp");
        let Ok(entries) = fs::read_dir(&tmp) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale {
                // Best effort: a leftover that cannot be removed now is tried again next load.
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The size of a blob, or `None`.
    pub fn stat(&self, digest: &str) -> Result<Option<u64>, StorageError> {
        let path = self.blob_path(digest)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error("stat", &path, &err)),
        }
    }

    /// Up to `length` bytes (at most [`MAX_READ`]) from `offset`.
    pub fn read(&self, digest: &str, offset: u64, length: u32) -> Result<Vec<u8>, StorageError> {
        let path = self.blob_path(digest)?;
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound);
            }
            Err(err) => return Err(io_error("opening", &path, &err)),
        };
        file.seek(SeekFrom::Start(offset))
            .map_err(|err| io_error("seeking in", &path, &err))?;
        let mut data = Vec::new();
        file.take(u64::from(length.min(MAX_READ)))
            .read_to_end(&mut data)
            .map_err(|err| io_error("reading", &path, &err))?;
        Ok(data)
    }

    /// Starts writing `digest` into a fresh temp file.
    pub fn begin_write(&self, digest: &str, size: u64) -> Result<DirWriter, StorageError> {
        let path = self.blob_path(digest)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "{}-{}-{}.part",
            digest.replace(':', "-"),
            clock_nanos(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let temp = self.root.join("tmp").join(unique);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|err| io_error("creating", &temp, &err))?;
        Ok(DirWriter {
            file: Some(file),
            temp,
            path,
            expected: size,
            written: 0,
        })
    }

    /// Deletes a blob; `false` if it was not there.
    pub fn delete(&self, digest: &str) -> Result<bool, StorageError> {
        let path = self.blob_path(digest)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(io_error("removing", &path, &err)),
        }
    }

    /// Blobs in digest order after `after`, at most `limit`. Each page reads the directories
    /// of the algorithms it spans: fine for the thousands of blobs a directory store holds.
    pub fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<BlobInfo>, StorageError> {
        let mut out = Vec::new();
        for (algorithm, _) in ALGORITHMS {
            let dir = self.root.join("blobs").join(algorithm);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(io_error("listing", &dir, &err)),
            };
            let mut digests = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|err| io_error("listing", &dir, &err))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let digest = format!("{algorithm}:{name}");
                // Foreign files in the tree are not blobs.
                if parse_digest(&digest).is_err() || after.is_some_and(|a| digest.as_str() <= a) {
                    continue;
                }
                digests.push(digest);
            }
            digests.sort();
            for digest in digests {
                if out.len() >= limit as usize {
                    return Ok(out);
                }
                let path = dir.join(&digest[algorithm.len() + 1..]);
                match fs::metadata(&path) {
                    Ok(meta) => out.push(BlobInfo {
                        digest,
                        size: meta.len(),
                    }),
                    // Deleted between the listing and now: not there any more.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(io_error("stat", &path, &err)),
                }
            }
        }
        Ok(out)
    }
}

/// Nanoseconds for temp names: the host's clock in the guest, the system clock natively (the
/// host import does not exist outside wasm).
fn clock_nanos() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        berth_plugin_sdk::now_nanos()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
}

/// A blob being written to its temp file.
pub struct DirWriter {
    /// `None` once committed or aborted.
    file: Option<File>,
    temp: PathBuf,
    path: PathBuf,
    expected: u64,
    written: u64,
}

impl BlobWriter for DirWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| StorageError::Io("write after commit or abort".to_owned()))?;
        file.write_all(chunk)
            .map_err(|err| io_error("writing", &self.temp, &err))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    fn commit(mut self, size: u64) -> Result<(), StorageError> {
        if size != self.written || size != self.expected {
            return Err(StorageError::Io(format!(
                "commit of {}: {} bytes written, commit says {size}, begin-write said {}",
                self.path.display(),
                self.written,
                self.expected
            )));
        }
        let Some(file) = self.file.take() else {
            return Err(StorageError::Io("commit after commit or abort".to_owned()));
        };
        file.sync_all()
            .map_err(|err| io_error("syncing", &self.temp, &err))?;
        drop(file);
        let dir = self
            .path
            .parent()
            .ok_or_else(|| StorageError::Io(format!("{} has no parent", self.path.display())))?;
        fs::create_dir_all(dir).map_err(|err| io_error("creating", dir, &err))?;
        fs::rename(&self.temp, &self.path)
            .map_err(|err| io_error("renaming into place", &self.path, &err))?;
        // Make the rename itself durable. Where the platform cannot open a directory for
        // syncing, the rename is still atomic, only its durability waits for the next sync.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn abort(mut self) {
        self.discard();
    }
}

impl DirWriter {
    fn discard(&mut self) {
        if self.file.take().is_some() {
            // Best effort: a temp file that cannot be removed is invisible to readers and is
            // swept as stale later.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Drop for DirWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn put(store: &DirStore, digest: &str, data: &[u8]) {
        let mut writer = store.begin_write(digest, data.len() as u64).unwrap();
        for chunk in data.chunks(3) {
            writer.write(chunk).unwrap();
        }
        writer.commit(data.len() as u64).unwrap();
    }

    fn temps(root: &Path) -> usize {
        fs::read_dir(root.join("tmp")).unwrap().count()
    }

    #[test]
    fn write_commit_stat_read_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let d = digest(1);
        assert_eq!(store.stat(&d).unwrap(), None);
        put(&store, &d, b"hello, world");
        assert!(dir.path().join("blobs/sha256").join(&d[7..]).is_file());
        assert_eq!(store.stat(&d).unwrap(), Some(12));
        assert_eq!(store.read(&d, 0, 5).unwrap(), b"hello");
        assert_eq!(store.read(&d, 7, 100).unwrap(), b"world");
        assert!(store.read(&d, 12, 10).unwrap().is_empty());
        assert!(store.read(&d, 99, 10).unwrap().is_empty());
        assert_eq!(temps(dir.path()), 0);
    }

    #[test]
    fn nothing_is_visible_before_commit_and_abort_or_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let d = digest(2);
        let mut writer = store.begin_write(&d, 4).unwrap();
        writer.write(b"abcd").unwrap();
        assert_eq!(store.stat(&d).unwrap(), None);
        assert!(matches!(store.read(&d, 0, 1), Err(StorageError::NotFound)));
        writer.abort();
        assert_eq!(temps(dir.path()), 0);
        let mut dropped = store.begin_write(&d, 4).unwrap();
        dropped.write(b"ab").unwrap();
        drop(dropped);
        assert_eq!(temps(dir.path()), 0);
        assert_eq!(store.stat(&d).unwrap(), None);
    }

    #[test]
    fn rewriting_keeps_the_old_blob_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let d = digest(3);
        put(&store, &d, b"old!");
        let mut writer = store.begin_write(&d, 4).unwrap();
        writer.write(b"new!").unwrap();
        assert_eq!(store.read(&d, 0, 10).unwrap(), b"old!");
        writer.commit(4).unwrap();
        assert_eq!(store.read(&d, 0, 10).unwrap(), b"new!");
    }

    #[test]
    fn a_size_mismatch_refuses_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let d = digest(4);
        let mut writer = store.begin_write(&d, 10).unwrap();
        writer.write(b"short").unwrap();
        let err = writer.commit(10).unwrap_err();
        assert!(format!("{err:?}").contains("5 bytes written"), "{err:?}");
        assert_eq!(store.stat(&d).unwrap(), None);
        assert_eq!(temps(dir.path()), 0);
    }

    #[test]
    fn list_pages_in_digest_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        for n in [5u8, 1, 9, 3] {
            put(&store, &digest(n), &vec![0; n as usize]);
        }
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        put(&store, &sha512, b"x");
        fs::write(dir.path().join("blobs/sha256/not-a-digest"), b"").unwrap();
        let first = store.list(None, 2).unwrap();
        let names: Vec<&str> = first.iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(names, vec![digest(1), digest(3)]);
        assert_eq!(first[1].size, 3);
        let rest = store.list(Some(&digest(3)), 10).unwrap();
        let names: Vec<&str> = rest.iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(
            names,
            vec![digest(5).as_str(), digest(9).as_str(), sha512.as_str()]
        );
        assert!(store.list(Some(&sha512), 10).unwrap().is_empty());
    }

    #[test]
    fn delete_reports_whether_the_blob_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let d = digest(6);
        put(&store, &d, b"x");
        assert!(store.delete(&d).unwrap());
        assert!(!store.delete(&d).unwrap());
        assert_eq!(store.stat(&d).unwrap(), None);
    }

    #[test]
    fn digests_that_could_escape_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        for bad in [
            "sha256:../../etc/passwd",
            "md5:abc",
            "sha256",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}", "a".repeat(63)),
        ] {
            let err = store.stat(bad).unwrap_err();
            assert!(
                format!("{err:?}").contains("invalid digest"),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn a_missing_root_is_a_configuration_error() {
        let err = DirStore::open("/nonexistent/berth-dir-storage")
            .err()
            .unwrap();
        let StorageError::InvalidConfig(message) = err else {
            panic!("{err:?}");
        };
        assert!(
            message.contains("/nonexistent/berth-dir-storage"),
            "{message}"
        );
    }
}
