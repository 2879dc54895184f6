//! `berth load` on arbitrary archives: a tar (or bytes that sniff as gzip
//! or zstd) read by `berth_image::load` into a content store. It returns
//! an image list or an error, never panics, hangs or grows without bound.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use berth_content::ContentStore;
use libfuzzer_sys::fuzz_target;

struct Env {
    rt: tokio::runtime::Runtime,
    store: ContentStore,
    _dir: PathBuf,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("berth-fuzz-load-")
            .tempdir()
            .expect("a scratch directory")
            .keep();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        let store = rt
            .block_on(ContentStore::open(dir.join("content")))
            .expect("a content store");
        Env {
            rt,
            store,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let env = env();
    let archive = std::io::Cursor::new(data.to_vec());
    if let Ok(images) = env.rt.block_on(berth_image::load(archive, &env.store)) {
        for image in images {
            assert!(
                image
                    .layers
                    .iter()
                    .all(|l| !l.digest.to_string().is_empty())
            );
        }
    }
});
