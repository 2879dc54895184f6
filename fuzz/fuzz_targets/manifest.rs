//! Manifests and indexes as a registry, a pull or `berth load` receives
//! them: `ManifestSummary::parse` under each content type berth meets, then
//! what callers do with a summary (blob references, platform selection),
//! and image configs with their chain IDs.
#![no_main]

use berth_image::{ImageConfig, Platform, chain_ids};
use berth_oci::{ManifestSummary, media_types};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some(media_types::OCI_MANIFEST),
    Some(media_types::OCI_INDEX),
    Some(media_types::DOCKER_MANIFEST),
    Some(media_types::DOCKER_MANIFEST_LIST),
    Some("application/json"),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    Some(""),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    if let Ok(summary) = ManifestSummary::parse(content_type, body) {
        let _ = summary.blob_refs().count();
        let _ = summary.is_index();
        let host = Platform::host();
        for child in &summary.manifests {
            if let Some(p) = child
                .platform
                .clone()
                .and_then(|p| serde_json::from_value::<Platform>(p).ok())
            {
                let _ = host.runs(&p);
                let _ = p.to_string();
            }
        }
    }
    if let Ok(config) = ImageConfig::parse(body, "fuzz config") {
        let ids = chain_ids(&config.rootfs.diff_ids);
        assert_eq!(ids.len(), config.rootfs.diff_ids.len());
    }
});
