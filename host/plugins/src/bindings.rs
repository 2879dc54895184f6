//! The one place `bindgen!` runs: one module per world of `wit/`. The
//! interfaces every world imports (`types`, `log`, `config`, `clock`) are
//! generated once, with the scanner world, and shared by the others, so each
//! host capability implements one trait.
//!
//! Exports are called asynchronously (so a WASI wait inside a call is a
//! future the host can drop at the deadline); the host's own imports are
//! plain functions that never wait.

pub mod scanner {
    wasmtime::component::bindgen!({
        world: "scanner",
        path: "../../wit",
        exports: { default: async },
        with: {
            "berth:plugin/image-fs.rootfs": crate::capabilities::image_fs::Rootfs,
        },
    });
}

pub mod hook {
    wasmtime::component::bindgen!({
        world: "lifecycle-hook",
        path: "../../wit",
        exports: { default: async },
        with: {
            "berth:plugin/types": crate::bindings::scanner::berth::plugin::types,
            "berth:plugin/log": crate::bindings::scanner::berth::plugin::log,
            "berth:plugin/config": crate::bindings::scanner::berth::plugin::config,
            "berth:plugin/clock": crate::bindings::scanner::berth::plugin::clock,
        },
    });
}

/// The complete edition of the hook contract (`lifecycle`); [`hook`] is
/// the first (`hooks`), kept for plugins built against 0.1.0.
pub mod policy {
    wasmtime::component::bindgen!({
        world: "lifecycle-policy",
        path: "../../wit",
        exports: { default: async },
        with: {
            "berth:plugin/types": crate::bindings::scanner::berth::plugin::types,
            "berth:plugin/log": crate::bindings::scanner::berth::plugin::log,
            "berth:plugin/config": crate::bindings::scanner::berth::plugin::config,
            "berth:plugin/clock": crate::bindings::scanner::berth::plugin::clock,
        },
    });
}

pub mod auth {
    wasmtime::component::bindgen!({
        world: "auth-provider",
        path: "../../wit",
        exports: { default: async },
        with: {
            "berth:plugin/types": crate::bindings::scanner::berth::plugin::types,
            "berth:plugin/log": crate::bindings::scanner::berth::plugin::log,
            "berth:plugin/config": crate::bindings::scanner::berth::plugin::config,
            "berth:plugin/clock": crate::bindings::scanner::berth::plugin::clock,
        },
    });
}

pub mod storage {
    wasmtime::component::bindgen!({
        world: "storage-backend",
        path: "../../wit",
        exports: { default: async },
        with: {
            "berth:plugin/types": crate::bindings::scanner::berth::plugin::types,
            "berth:plugin/log": crate::bindings::scanner::berth::plugin::log,
            "berth:plugin/config": crate::bindings::scanner::berth::plugin::config,
            "berth:plugin/clock": crate::bindings::scanner::berth::plugin::clock,
        },
    });
}

pub use scanner::berth::plugin::{clock, config, image_fs, log, types};
