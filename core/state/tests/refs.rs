//! Reference counting and GC claims on a real sled database.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use berth_oci::Digest;
use berth_state::{ManifestRecord, State, StateError};

fn rec(refs: &[&Digest]) -> ManifestRecord {
    ManifestRecord {
        media_type: berth_oci::media_types::OCI_MANIFEST.to_string(),
        size: 1,
        refs: refs.iter().map(|d| (*d).clone()).collect(),
        subject: None,
        artifact_type: None,
        annotations: None,
        created: 0,
    }
}

#[test]
fn manifests_hold_blobs_and_gc_respects_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = State::open(dir.path()).unwrap();
    let (m, layer, loose) = (
        Digest::sha256_of(b"m"),
        Digest::sha256_of(b"l"),
        Digest::sha256_of(b"x"),
    );
    s.link_blob("a/b", &layer).unwrap();
    s.link_blob("a/b", &loose).unwrap();
    s.put_manifest("a/b", &m, &rec(&[&m, &layer]), None, &["v1"])
        .unwrap();
    // The same manifest again (re-push) takes no second reference.
    s.put_manifest("a/b", &m, &rec(&[&m, &layer]), None, &["v2"])
        .unwrap();
    assert_eq!(s.blob_meta(&layer).unwrap().refs, 1);
    assert_eq!(s.list_tags("a/b", None, None).unwrap(), vec!["v1", "v2"]);
    assert_eq!(s.list_tags("a/b", Some("v1"), Some(5)).unwrap(), vec!["v2"]);

    let future = berth_state::now() + 10;
    assert!(
        !s.claim_blob_for_gc(&layer, future).unwrap(),
        "referenced blob claimed"
    );
    assert!(
        !s.claim_blob_for_gc(&loose, 0).unwrap(),
        "blob inside grace period claimed"
    );
    assert!(s.claim_blob_for_gc(&loose, future).unwrap());
    // A push that now wants the claimed blob is told to upload it again.
    assert!(matches!(
        s.link_blob("c", &loose),
        Err(StateError::BlobDeleting(_))
    ));
    assert!(matches!(
        s.put_manifest("c", &Digest::sha256_of(b"m2"), &rec(&[&loose]), None, &[]),
        Err(StateError::BlobDeleting(_))
    ));
    assert_eq!(s.blobs_being_deleted().unwrap(), vec![loose.clone()]);
    s.release_blob(&loose).unwrap();
    assert!(!s.blob_linked("a/b", &loose).unwrap());
    s.link_blob("c", &loose).unwrap();

    assert!(s.delete_manifest("a/b", &m).unwrap());
    assert_eq!(s.blob_meta(&layer).unwrap().refs, 0);
    assert!(s.list_tags("a/b", None, None).unwrap().is_empty());
    assert!(!s.delete_manifest("a/b", &m).unwrap());
}
