#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! The build produced every component, and each file is a WebAssembly component (not a core
//! module, which a plain wasm32 build without the component step would give).

/// `\0asm`, then the component-model layer's version 0x0d and layer 1.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

#[test]
fn every_component_is_built_and_is_a_component() {
    let all = berth_plugin_artifacts::all();
    assert_eq!(all.len(), expected_components(), "{all:?}");
    for (name, path) in all {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: reading {path}: {e}"));
        assert!(
            bytes.len() > 1024,
            "{name}: {path} is only {} bytes",
            bytes.len()
        );
        assert_eq!(
            bytes[..8],
            COMPONENT_HEADER,
            "{name}: {path} is not a component"
        );
    }
}

#[test]
fn constants_name_the_crates() {
    assert!(berth_plugin_artifacts::DENY_ROOT.ends_with("/wasm32-wasip2/release/deny_root.wasm"));
    assert!(berth_plugin_artifacts::FIXTURE_SPIN.ends_with("/fixture_spin.wasm"));
    let names: Vec<&str> = berth_plugin_artifacts::all()
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert!(names.contains(&"fixture-auth-panic"), "{names:?}");
    assert!(names.contains(&"policy-template"), "{names:?}");
}

/// Every member of the plugins workspace but the SDK, and the SDK's policy
/// template: counted from `plugins/Cargo.toml`, so a new plugin or fixture
/// that the build forgets fails here.
fn expected_components() -> usize {
    let manifest =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let members = text.split("members = [").nth(1).unwrap();
    let members = &members[..members.find(']').unwrap()];
    let crates = members
        .lines()
        .filter(|l| l.trim().starts_with('"'))
        .count();
    // Less the SDK, plus its policy template.
    crates
}
