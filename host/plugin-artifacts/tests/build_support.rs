#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! The build script's decisions: the missing-target error, the environment the child cargo
//! gets, and dep-info parsing.

#[path = "../build/support.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;

/// A stand-in `rustc` that reports `sysroot` as its sysroot.
fn fake_rustc(dir: &std::path::Path, sysroot: &std::path::Path) -> String {
    let path = dir.join("rustc");
    std::fs::write(&path, format!("#!/bin/sh\necho {}\n", sysroot.display())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn a_toolchain_without_the_wasm_target_gets_the_rustup_command() {
    let dir = tempfile::tempdir().unwrap();
    let sysroot = dir.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu")).unwrap();
    let rustc = fake_rustc(dir.path(), &sysroot);
    let err = support::check_target_installed(&rustc).unwrap_err();
    assert!(err.contains("rustup target add wasm32-wasip2"), "{err}");
    assert!(err.contains(&sysroot.display().to_string()), "{err}");

    std::fs::create_dir_all(sysroot.join("lib/rustlib/wasm32-wasip2")).unwrap();
    support::check_target_installed(&rustc).unwrap();
}

#[test]
fn a_rustc_that_cannot_run_is_named() {
    let err = support::check_target_installed("/nonexistent/rustc").unwrap_err();
    assert!(err.contains("/nonexistent/rustc --print sysroot"), "{err}");
}

#[test]
fn the_child_cargo_gets_no_host_flags_or_target_dir() {
    for dropped in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PKG_NAME",
        "CARGO_CFG_TARGET_OS",
        "CARGO_MANIFEST_DIR",
        "TARGET",
        "OUT_DIR",
        "PROFILE",
        "__CARGO_FIX_PLZ",
    ] {
        assert!(!support::inherit(dropped), "{dropped} is inherited");
    }
    for kept in [
        "PATH",
        "HOME",
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "CARGO_HOME",
        "CARGO_MAKEFLAGS",
        "CARGO_NET_OFFLINE",
        "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
    ] {
        assert!(support::inherit(kept), "{kept} is dropped");
    }
}

#[test]
fn dep_info_sources_with_escaped_spaces() {
    let text = "/t/deny_root.wasm: /r/plugins/sdk/src/lib.rs /r/my\\ dir/a.rs /r/wit/hooks.wit\n\n\
                /r/plugins/sdk/src/lib.rs:\n";
    assert_eq!(
        support::dep_sources(text),
        vec![
            "/r/plugins/sdk/src/lib.rs",
            "/r/my dir/a.rs",
            "/r/wit/hooks.wit"
        ]
    );
    assert!(support::dep_sources("").is_empty());
    assert!(support::dep_sources("no colon here").is_empty());
}
