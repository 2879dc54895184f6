//! Helpers for the host tests: a unique cgroup per test, nested below the
//! test's own cgroups, destroyed on drop; processes that join before they
//! run.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_cgroups::{CgroupManager, Layout, Resources, manager_for};

/// The host layout, nested below this process's cgroups so that test
/// containers stay inside whatever accounting runs the tests.
pub fn layout() -> Layout {
    Layout::detect().unwrap().nested_in_own_cgroups().unwrap()
}

/// A unique cgroup name for one test.
pub fn name(test: &str) -> String {
    format!("berth-test-{test}-{}", std::process::id())
}

/// A cgroup destroyed when dropped, even when the test fails.
pub struct Guard {
    pub cgroup: Box<dyn CgroupManager>,
    pub name: String,
}

impl std::ops::Deref for Guard {
    type Target = dyn CgroupManager;
    fn deref(&self) -> &Self::Target {
        self.cgroup.as_ref()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.cgroup.destroy() {
            eprintln!("destroying {}: {e}", self.name);
        }
    }
}

/// Create the test's cgroup with `resources` on `layout`.
pub fn cgroup_on(layout: &Layout, test: &str, resources: &Resources) -> Guard {
    let name = name(test);
    let cgroup = manager_for(layout, Path::new(&name));
    let guard = Guard { cgroup, name };
    guard.create(resources).unwrap();
    guard
}

/// Create the test's cgroup on the host layout.
pub fn cgroup(test: &str, resources: &Resources) -> Guard {
    cgroup_on(&layout(), test, resources)
}

/// Run `script` under `sh` inside the cgroup: the shell waits on stdin
/// until it has been moved, so not one instruction runs outside.
pub fn spawn_in(cgroup: &dyn CgroupManager, script: &str) -> Child {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read _ ; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    cgroup.add_process(pid).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    child
}

/// Wait for `child` to exit, at most `limit`.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Every directory below /sys/fs/cgroup whose name contains `needle`.
pub fn leftovers(needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let path = entry.path();
                if path.to_string_lossy().contains(needle) {
                    found.push(path.clone());
                }
                stack.push(path);
            }
        }
    }
    found
}

/// The cgroup's directory in the hierarchy whose root path contains
/// `hierarchy` (e.g. "/pids/").
pub fn dir_of(cgroup: &dyn CgroupManager, hierarchy: &str) -> PathBuf {
    cgroup
        .paths()
        .into_iter()
        .find(|p| p.to_string_lossy().contains(hierarchy))
        .unwrap()
}
