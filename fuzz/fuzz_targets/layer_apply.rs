//! The layer applier on arbitrary tar input: a plain tar (or raw bytes
//! under a gzip media type) applied into a fresh directory beside an
//! `outside` directory. Whatever the input, the apply returns (no panic, no
//! hang, bounded memory), writes nothing outside its directory, and a
//! refused layer leaves no directory behind. Each run cleans up after
//! itself.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_layer::{ApplyOptions, Limits, WhiteoutMode, apply_fresh};
use berth_oci::media_types::{OCI_LAYER, OCI_LAYER_GZIP};
use libfuzzer_sys::fuzz_target;

/// One scratch area per fuzzing process: `outside/` must stay empty and
/// `snap` exists only during a run.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("berth-fuzz-layer-")
            .tempdir()
            .expect("a scratch directory")
            .keep();
        std::fs::create_dir(dir.join("outside")).expect("the outside directory");
        dir
    })
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listing the scratch directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, layer)) = data.split_first() else {
        return;
    };
    let scratch = scratch();
    let target = scratch.join("snap");
    let media_type = if selector & 1 == 0 {
        OCI_LAYER
    } else {
        OCI_LAYER_GZIP
    };
    let opts = ApplyOptions {
        whiteouts: if selector & 2 == 0 {
            WhiteoutMode::Overlay
        } else {
            WhiteoutMode::Flatten
        },
        max_file_size: 1 << 20,
        preserve_ownership: true,
        limits: Limits {
            max_header_bytes: 64 << 10,
            max_layer_bytes: 8 << 20,
            max_entries: 10_000,
        },
    };
    let result = apply_fresh(&target, media_type, layer, None, &opts);
    assert!(
        listing(&scratch.join("outside")).is_empty(),
        "the layer wrote outside its directory ({result:?})"
    );
    let left = listing(scratch);
    match &result {
        Ok(_) => assert_eq!(left, ["outside", "snap"], "{result:?}"),
        Err(_) => assert_eq!(
            left,
            ["outside"],
            "a refused layer left its directory: {result:?}"
        ),
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).expect("removing the applied layer");
    }
});
