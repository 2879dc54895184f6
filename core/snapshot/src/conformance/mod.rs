//! The conformance suite: every [`Snapshotter`] implementation runs it, with
//! real mounts, as root. Each case is a public function taking a factory
//! that opens the implementation on a root directory (called again on the
//! same directory to check that a restart keeps everything). Generate one
//! `#[test]` per case with [`snapshotter_conformance!`](crate::snapshotter_conformance):
//!
//! ```no_run
//! # use std::path::Path;
//! use berth_snapshot::{OverlaySnapshotter, Snapshotter};
//! fn open(dir: &Path) -> Box<dyn Snapshotter> {
//!     let state = berth_state::State::open(dir.join("state")).unwrap();
//!     Box::new(OverlaySnapshotter::open(dir.join("overlay"), &state).unwrap())
//! }
//! berth_snapshot::snapshotter_conformance!(open);
//! # fn main() {}
//! ```
//!
//! The cases panic on failure (they are tests) and never skip: without
//! root they fail with a message saying so. Mounts are unmounted by guards,
//! so a failing case leaks none.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: panicking is how a case reports failure"
)]

mod cases;

use std::path::{Path, PathBuf};

pub use cases::*;

use crate::{Mount, MountGuard, Snapshotter};

/// Opens the implementation under test on a root directory.
pub type Make<'a> = &'a dyn Fn(&Path) -> Box<dyn Snapshotter>;

/// One conformance case.
pub type Case = fn(Make<'_>);

/// Every case, by name, for [`run`].
pub const CASES: &[(&str, Case)] = &[
    ("prepare_commit_view", prepare_commit_view),
    ("whiteouts_hide_lower_files", whiteouts_hide_lower_files),
    (
        "stat_reports_kind_parent_labels",
        stat_reports_kind_parent_labels,
    ),
    ("remove_rules", remove_rules),
    ("commit_and_create_rules", commit_and_create_rules),
    (
        "disposable_snapshots_run_but_never_commit",
        disposable_snapshots_run_but_never_commit,
    ),
    ("walk_lists_everything", walk_lists_everything),
    ("usage_counts_own_layer", usage_counts_own_layer),
    ("chain_of_128_layers", chain_of_128_layers),
    ("restart_keeps_everything", restart_keeps_everything),
    (
        "concurrent_prepare_and_remove",
        concurrent_prepare_and_remove,
    ),
    ("mounts_are_nosuid_nodev", mounts_are_nosuid_nodev),
];

/// Run every case in turn (one `#[test]` for all; prefer the macro).
pub fn run(make: Make<'_>) {
    for (name, case) in CASES {
        tracing::info!(case = name, "snapshotter conformance");
        case(make);
    }
}

/// One `#[test]` per conformance case, for the factory `$make` (a function
/// `fn(&Path) -> Box<dyn Snapshotter>`).
#[macro_export]
macro_rules! snapshotter_conformance {
    ($make:path) => {
        $crate::snapshotter_conformance!(@cases $make;
            prepare_commit_view,
            whiteouts_hide_lower_files,
            stat_reports_kind_parent_labels,
            remove_rules,
            commit_and_create_rules,
            disposable_snapshots_run_but_never_commit,
            walk_lists_everything,
            usage_counts_own_layer,
            chain_of_128_layers,
            restart_keeps_everything,
            concurrent_prepare_and_remove,
            mounts_are_nosuid_nodev
        );
    };
    (@cases $make:path; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$make);
            }
        )*
    };
}

/// A fresh root for one case, and the implementation opened on it.
pub(crate) struct Fixture<'a> {
    snap: Option<Box<dyn Snapshotter>>,
    make: Make<'a>,
    root: PathBuf,
    mnt: PathBuf,
    // Last, so that it is removed after the snapshotter is closed.
    _dir: tempfile::TempDir,
}

impl<'a> Fixture<'a> {
    pub(crate) fn new(make: Make<'a>) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the snapshotter conformance suite mounts file systems: run it as root"
        );
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let root = dir.path().join("root");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        Fixture {
            snap: Some(make(&root)),
            make,
            root,
            mnt,
            _dir: dir,
        }
    }

    pub(crate) fn snap(&self) -> &dyn Snapshotter {
        self.snap.as_deref().expect("snapshotter is open")
    }

    /// Close the implementation and open it again on the same root.
    pub(crate) fn reopen(&mut self) {
        self.snap = None;
        self.snap = Some((self.make)(&self.root));
    }

    /// Mount `mounts` on a fresh directory named `name`.
    pub(crate) fn mount(&self, mounts: &[Mount], name: &str) -> Mounted {
        let path = self.mnt.join(name);
        std::fs::create_dir_all(&path).unwrap();
        let guard = MountGuard::mount(mounts, &path)
            .unwrap_or_else(|e| panic!("mounting {mounts:?} on {}: {e}", path.display()));
        Mounted {
            path,
            guard: Some(guard),
        }
    }

    /// Prepare `key` on `parent`, let `write` fill it, commit it as `name`.
    pub(crate) fn layer(&self, name: &str, parent: Option<&str>, write: impl FnOnce(&Path)) {
        let key = format!("{name}-active");
        let mounts = self
            .snap()
            .prepare(&key, parent, Default::default())
            .unwrap();
        let m = self.mount(&mounts, &key);
        write(&m.path);
        m.unmount();
        self.snap().commit(name, &key, Default::default()).unwrap();
    }
}

/// The per-mount options (`rw,nosuid,nodev,relatime`) of the top-most
/// mount at `path`, from this process's mount table.
pub(crate) fn mount_options(path: &Path) -> Option<String> {
    let target = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(target.as_ref()))
        .and_then(|l| l.split(' ').nth(5).map(str::to_owned))
}

/// A mounted snapshot; unmounted when dropped.
pub(crate) struct Mounted {
    pub(crate) path: PathBuf,
    guard: Option<MountGuard>,
}

impl Mounted {
    pub(crate) fn unmount(mut self) {
        if let Some(g) = self.guard.take() {
            g.unmount().unwrap();
        }
    }

    pub(crate) fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub(crate) fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.join(p))
            .unwrap_or_else(|e| panic!("reading {p} in {}: {e}", self.path.display()))
    }
}
