//! The seam between cgroup logic and the kernel: every control-file read,
//! write, mkdir and rmdir, and the attaching of a cgroup v2 device filter,
//! goes through [`CgroupFs`], so the mapping from [`crate::Resources`] to
//! files and programs can be checked without root by [`MemoryFs`], while
//! integration tests drive [`HostFs`] for real.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::device_filter::Insn;

/// Read/write access to a cgroup file system.
pub trait CgroupFs: Send + Sync + fmt::Debug {
    /// The content of a control file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Write `value` to a control file in one `write(2)`, as the kernel
    /// parses each write separately.
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    /// Whether a control file or directory exists.
    fn exists(&self, path: &Path) -> bool;
    /// Create one directory level; an existing directory is not an error.
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    /// Remove one (cgroup) directory.
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    /// Make `program` the one device filter (`BPF_PROG_TYPE_CGROUP_DEVICE`)
    /// of the cgroup v2 directory `cgroup`, replacing any attached before.
    /// The parents' filters keep applying. Removing the cgroup removes it.
    fn set_device_filter(&self, cgroup: &Path, program: &[Insn]) -> io::Result<()>;
}

/// The real cgroup file system of this host.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFs;

impl CgroupFs for HostFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        // No O_CREAT and no truncation: control files exist or the
        // controller is absent, and creating a regular file in a cgroup
        // directory is not possible anyway.
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.write_all(value.as_bytes())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        match std::fs::create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn set_device_filter(&self, cgroup: &Path, program: &[Insn]) -> io::Result<()> {
        crate::bpf::replace_device_filter(cgroup, program)
    }
}

/// An in-memory cgroup file system that records every write, for unit
/// tests of the resource mapping. Directories must be created (or seeded)
/// before files in them can be written, as on the real one; writing a
/// file that was never seeded fails with `NotFound`, like a control file
/// of a missing controller.
#[derive(Debug, Default)]
pub struct MemoryFs {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    files: BTreeMap<PathBuf, String>,
    dirs: BTreeSet<PathBuf>,
    writes: Vec<(PathBuf, String)>,
    /// Control file names every new directory gets, with their initial value.
    template: BTreeMap<String, String>,
    /// The device filter of each directory that has one.
    filters: BTreeMap<PathBuf, Vec<Insn>>,
    /// Whether attaching a device filter fails (as without `bpf(2)`).
    refuse_filters: bool,
}

impl MemoryFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // A panic in another test thread must not hide this test's result.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Seed a file (and its parent directories).
    pub fn seed(&self, path: impl AsRef<Path>, content: &str) {
        let path = path.as_ref();
        let mut inner = self.lock();
        for dir in path.ancestors().skip(1) {
            inner.dirs.insert(dir.to_path_buf());
        }
        inner.files.insert(path.to_path_buf(), content.to_owned());
    }

    /// Seed a directory (and its parents).
    pub fn seed_dir(&self, path: impl AsRef<Path>) {
        let mut inner = self.lock();
        for dir in path.as_ref().ancestors() {
            inner.dirs.insert(dir.to_path_buf());
        }
    }

    /// Control files that every directory created by `mkdir` starts with,
    /// as the kernel populates a new cgroup.
    pub fn template(&self, name: &str, content: &str) {
        self.lock()
            .template
            .insert(name.to_owned(), content.to_owned());
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<(PathBuf, String)> {
        self.lock().writes.clone()
    }

    /// The last value written to (or seeded in) `path`.
    pub fn get(&self, path: impl AsRef<Path>) -> Option<String> {
        self.lock().files.get(path.as_ref()).cloned()
    }

    /// Whether `path` is a directory now.
    pub fn is_dir(&self, path: impl AsRef<Path>) -> bool {
        self.lock().dirs.contains(path.as_ref())
    }

    /// The device filter attached to the directory `path`, if any.
    pub fn device_filter(&self, path: impl AsRef<Path>) -> Option<Vec<Insn>> {
        self.lock().filters.get(path.as_ref()).cloned()
    }

    /// Make every later attach of a device filter fail with `EPERM`, as on
    /// a kernel without cgroup BPF or for a caller without the privilege.
    pub fn refuse_device_filters(&self) {
        self.lock().refuse_filters = true;
    }
}

impl CgroupFs for MemoryFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.lock()
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.files.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        inner.files.insert(path.to_path_buf(), value.to_owned());
        inner.writes.push((path.to_path_buf(), value.to_owned()));
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let inner = self.lock();
        inner.files.contains_key(path) || inner.dirs.contains(path)
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        let parent_ok = path.parent().is_some_and(|p| inner.dirs.contains(p));
        if !parent_ok {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        if inner.dirs.insert(path.to_path_buf()) {
            let template: Vec<(String, String)> = inner
                .template
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (name, content) in template {
                inner.files.insert(path.join(name), content);
            }
        }
        Ok(())
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.dirs.remove(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        inner.files.retain(|p, _| p.parent() != Some(path));
        inner.filters.remove(path);
        Ok(())
    }

    fn set_device_filter(&self, cgroup: &Path, program: &[Insn]) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.refuse_filters {
            return Err(io::Error::from_raw_os_error(
                nix::errno::Errno::EPERM as i32,
            ));
        }
        if !inner.dirs.contains(cgroup) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        inner.filters.insert(cgroup.to_path_buf(), program.to_vec());
        Ok(())
    }
}
