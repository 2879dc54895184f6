//! `berth-api-types` is serde-only, so the records the daemon answers with
//! straight from core (an image, a history entry) have serde copies there,
//! which the CLI decodes. A field renamed or added on one side alone would
//! compile and break at run time: each core record, fully populated, must
//! read into its copy and write back the very same JSON.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use berth_oci::Digest;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn same_json<Core: Serialize, Wire: Serialize + DeserializeOwned>(core: &Core) {
    let sent = serde_json::to_value(core).unwrap();
    let read: Wire = serde_json::from_value(sent.clone())
        .unwrap_or_else(|e| panic!("the api-types copy cannot read {sent}: {e}"));
    assert_eq!(serde_json::to_value(&read).unwrap(), sent);
}

#[test]
fn an_image_record_reads_into_its_api_types_copy_unchanged() {
    let d = |s: &str| Digest::sha256_of(s.as_bytes());
    let record = berth_state::ImageRecord {
        reference: "127.0.0.1:5000/app:1".into(),
        manifest: d("manifest"),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config: d("config"),
        size: 1234,
        refs: vec![d("manifest"), d("config"), d("layer")],
        created: 1_765_000_000,
        origin: Some("registry.example/app:1".into()),
        chain_id: Some(d("chain")),
    };
    same_json::<_, berth_api_types::Image>(&record);
}

#[test]
fn a_history_entry_reads_into_its_api_types_copy_unchanged() {
    let full = berth_image::History {
        created: Some("2026-12-07T00:00:00Z".into()),
        created_by: Some("/bin/sh -c true".into()),
        author: Some("berth".into()),
        comment: Some("buildkit.dockerfile.v0".into()),
        empty_layer: true,
    };
    same_json::<_, berth_api_types::HistoryEntry>(&full);
    same_json::<_, berth_api_types::HistoryEntry>(&berth_image::History::default());
}
