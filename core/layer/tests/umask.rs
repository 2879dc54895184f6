//! berthd runs with umask 0077, so nothing it makes under its root is open
//! by accident; what it makes inside an image must still have the image's
//! modes. Alone in its own test binary: the umask is the process's.

#![allow(clippy::expect_used, reason = "tests fail loudly on setup errors")]

use std::os::unix::fs::PermissionsExt;

use berth_layer::{ApplyOptions, apply_fresh};
use berth_oci::media_types::OCI_LAYER;

#[test]
fn implied_parent_directories_are_0755_under_a_0077_umask() {
    // SAFETY: umask has no failure mode; no other test runs in this binary.
    unsafe { libc::umask(0o077) };
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, "usr/share/doc/file", &b"hi\n"[..])
        .expect("building the layer in memory");
    let data = tar.into_inner().expect("building the layer in memory");
    let scratch = tempfile::tempdir().expect("tempdir");
    let dst = scratch.path().join("layer");
    apply_fresh(&dst, OCI_LAYER, &data[..], None, &ApplyOptions::default())
        .expect("applying the layer");
    for dir in ["usr", "usr/share", "usr/share/doc"] {
        let mode = std::fs::metadata(dst.join(dir))
            .expect(dir)
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o755, "{dir}: {mode:o}");
    }
    let mode = std::fs::metadata(dst.join("usr/share/doc/file"))
        .expect("file")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o644, "file: {mode:o}");
}
