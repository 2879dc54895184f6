//! The wit-bindgen bindings, one module per world of `berth:plugin@0.1.1`.
//!
//! The imports every world shares (`log`, `config`, `clock`, `types`) are generated once, in
//! [`common`], and the world modules reuse them through `with`, so an SDK helper can log or read
//! the configuration without knowing which world the plugin exports.
//!
//! Why four worlds in one crate do not leak into every plugin: with `pub_export_macro`,
//! wit-bindgen puts only a world's *imports* in this crate's component-type section (unused
//! imports are dropped by componentization) and emits the section with the exports inside the
//! export macro, in the plugin crate that invokes it. A plugin therefore exports exactly the
//! world whose `export_*!` macro it calls.

/// The shared imports: `types`, `log`, `config` and `clock`. A world of imports only, so its
/// custom section may reach every plugin without adding exports.
pub mod common {
    wit_bindgen::generate!({
        inline: "
            package berth:sdk;
            world common {
                import berth:plugin/types@0.1.1;
                import berth:plugin/log@0.1.1;
                import berth:plugin/config@0.1.1;
                import berth:plugin/clock@0.1.1;
            }
        ",
        path: "../../wit",
        world: "berth:sdk/common",
        generate_all,
    });
}

/// World `lifecycle-policy`: the complete edition of the hook contract
/// (interface `lifecycle`). The first edition (`lifecycle-hook`, interface
/// `hooks`) stays in the WIT for plugins built against 0.1.0; the SDK builds
/// only complete-edition hooks.
pub mod hook {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "berth:plugin/lifecycle-policy@0.1.1",
        with: {
            "berth:plugin/types@0.1.1": crate::bindings::common::berth::plugin::types,
            "berth:plugin/log@0.1.1": crate::bindings::common::berth::plugin::log,
            "berth:plugin/config@0.1.1": crate::bindings::common::berth::plugin::config,
            "berth:plugin/clock@0.1.1": crate::bindings::common::berth::plugin::clock,
        },
        pub_export_macro: true,
        export_macro_name: "__export_hook_world",
        default_bindings_module: "::berth_plugin_sdk::bindings::hook",
    });
}

/// World `auth-provider`.
pub mod auth {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "berth:plugin/auth-provider@0.1.1",
        with: {
            "berth:plugin/types@0.1.1": crate::bindings::common::berth::plugin::types,
            "berth:plugin/log@0.1.1": crate::bindings::common::berth::plugin::log,
            "berth:plugin/config@0.1.1": crate::bindings::common::berth::plugin::config,
            "berth:plugin/clock@0.1.1": crate::bindings::common::berth::plugin::clock,
        },
        pub_export_macro: true,
        export_macro_name: "__export_auth_world",
        default_bindings_module: "::berth_plugin_sdk::bindings::auth",
    });
}

/// World `storage-backend`.
pub mod storage {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "berth:plugin/storage-backend@0.1.1",
        with: {
            "berth:plugin/types@0.1.1": crate::bindings::common::berth::plugin::types,
            "berth:plugin/log@0.1.1": crate::bindings::common::berth::plugin::log,
            "berth:plugin/config@0.1.1": crate::bindings::common::berth::plugin::config,
            "berth:plugin/clock@0.1.1": crate::bindings::common::berth::plugin::clock,
        },
        pub_export_macro: true,
        export_macro_name: "__export_storage_world",
        default_bindings_module: "::berth_plugin_sdk::bindings::storage",
    });
}

/// World `scanner`.
pub mod scanner {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "berth:plugin/scanner@0.1.1",
        with: {
            "berth:plugin/types@0.1.1": crate::bindings::common::berth::plugin::types,
            "berth:plugin/log@0.1.1": crate::bindings::common::berth::plugin::log,
            "berth:plugin/config@0.1.1": crate::bindings::common::berth::plugin::config,
            "berth:plugin/clock@0.1.1": crate::bindings::common::berth::plugin::clock,
        },
        pub_export_macro: true,
        export_macro_name: "__export_scanner_world",
        default_bindings_module: "::berth_plugin_sdk::bindings::scanner",
    });
}
