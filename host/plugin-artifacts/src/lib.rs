//! The paths of berth's guest components, built for `wasm32-wasip2` by this crate's build
//! script from the `plugins/` workspace (the SDK's example plugins and the hostile test
//! fixtures) and from `examples/policy-template`.
//!
//! Take it as a dev-dependency: a plain `cargo test` then builds the components first, and a
//! change under `plugins/`, `examples/policy-template/` or `wit/` rebuilds them. It owns no
//! logic and must never be a normal dependency of a shipped crate (its paths point into the
//! build's target directory).
//!
//! ```no_run
//! let bytes = std::fs::read(berth_plugin_artifacts::DENY_ROOT)?;
//! for (name, path) in berth_plugin_artifacts::all() {
//!     println!("{name}: {path}");
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// Every component as (crate name, absolute path of the release `.wasm`).
pub fn all() -> &'static [(&'static str, &'static str)] {
    ALL
}
