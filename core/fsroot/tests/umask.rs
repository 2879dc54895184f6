//! berthd runs with umask 0077; directories and files it makes inside a
//! container's root (mount targets, working directories) must have the
//! modes asked for, or the container's non-root users cannot reach them.
//! Alone in its own test binary: the umask is the process's.

#![allow(clippy::expect_used, reason = "tests fail loudly on setup errors")]

use std::os::unix::fs::PermissionsExt;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("made").permissions().mode() & 0o7777
}

#[test]
fn made_directories_and_files_have_their_modes_under_a_0077_umask() {
    // SAFETY: umask has no failure mode; no other test runs in this binary.
    unsafe { libc::umask(0o077) };
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = berth_fsroot::Root::open(scratch.path()).expect("opening the root");
    root.mkdir_all("/srv/app/data", 0o755).expect("mkdir_all");
    root.create_file("/etc/app/conf", 0o644)
        .expect("create_file");
    for dir in ["srv", "srv/app", "srv/app/data", "etc", "etc/app"] {
        assert_eq!(mode(&scratch.path().join(dir)), 0o755, "{dir}");
    }
    assert_eq!(mode(&scratch.path().join("etc/app/conf")), 0o644);
}
