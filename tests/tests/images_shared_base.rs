//! Two images sharing a base: `make-image.sh --variant 0/1` (with 16 MB of incompressible
//! data: 4 MB in layer 1, 4 MB in layer 2, 8 MB in layer 3) share layers 1 and 2. After
//! pulling both, the base snapshots exist once: 4 snapshot directories, not 6, and the
//! second pull adds about one layer 3 (8 MB) to the disk, not the whole image (16 MB).

use berth_e2e::images;
use berth_e2e::{Berthd, DockerRegistry, RegistryOpts, fixture, skopeo};

const MIB: u64 = 1_048_576;

#[test]
fn two_images_share_their_base_snapshots() -> anyhow::Result<()> {
    let v0 = fixture::build(&["--size", "16", "--variant", "0"])?;
    let v1 = fixture::build(&["--size", "16", "--variant", "1"])?;
    assert_eq!(
        v0.blobs[1..3],
        v1.blobs[1..3],
        "fixture variants must share layers 1 and 2"
    );
    assert_ne!(v0.blobs[3], v1.blobs[3]);

    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let r0 = format!("{}/e2e/shared-a:v0", reg.host());
    let r1 = format!("{}/e2e/shared-b:v1", reg.host());
    skopeo::copy(&v0.oci_ref(), &format!("docker://{r0}"), None, None)?;
    skopeo::copy(&v1.oci_ref(), &format!("docker://{r1}"), None, None)?;

    let snaps = images::snapshots_dir(&daemon.root);
    let du_empty = images::disk_usage(&snaps);
    daemon.berth_ok(&["pull", &r0])?;
    let after_first = images::snapshot_ids(&daemon.root);
    let du_first = images::disk_usage(&snaps);
    daemon.berth_ok(&["pull", &r1])?;
    let after_second = images::snapshot_ids(&daemon.root);
    let du_second = images::disk_usage(&snaps);

    let first = du_first - du_empty;
    let second = du_second - du_first;
    eprintln!(
        "snapshot dirs: {} after the first pull, {} after the second ({after_second:?}); \
         disk usage of {}: +{:.1} MiB for the first image, +{:.1} MiB for the second",
        after_first.len(),
        after_second.len(),
        snaps.display(),
        first as f64 / MIB as f64,
        second as f64 / MIB as f64
    );
    assert_eq!(
        after_first.len(),
        3,
        "one snapshot per layer: {after_first:?}"
    );
    assert!(after_first.is_subset(&after_second));
    assert_eq!(
        after_second.len(),
        4,
        "the second image should add only its own top layer: {after_second:?}"
    );
    // The first image is ~16 MiB of noise plus busybox; the second adds its 8 MiB layer 3
    // and a little metadata, far from another 16 MiB.
    assert!(first >= 16 * MIB, "first image used only {first} bytes");
    assert!(
        (8 * MIB..9 * MIB).contains(&second),
        "the second image added {second} bytes on disk; expected its 8 MiB layer 3 only"
    );

    // Both images are listed; removing one keeps the other's (shared) snapshots usable.
    let listed = daemon.berth_ok(&["images"])?;
    assert!(
        listed.contains("e2e/shared-a") && listed.contains("e2e/shared-b"),
        "berth images:\n{listed}"
    );
    Ok(())
}
