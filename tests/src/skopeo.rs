//! skopeo, run with an empty private blob-info cache.
//!
//! skopeo 1.9 remembers which registry already has which blob (in
//! `/var/lib/containers/cache`) and then mounts across repositories instead of sending data,
//! so a second push would test nothing. Every call here runs in its own mount namespace
//! with a fresh tmpfs over that directory (needs root, as the tests do).

use std::process::{Command, Output};

const CACHE_DIR: &str = "/var/lib/containers/cache";

/// The command that runs `skopeo ARGS…` with an empty private cache (not yet spawned).
pub fn skopeo_command(args: &[&str]) -> Command {
    let _ = std::fs::create_dir_all(CACHE_DIR);
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "sh",
        "-c",
        &format!("mount -t tmpfs none {CACHE_DIR} && exec skopeo \"$@\""),
        "skopeo",
    ]);
    cmd.args(args);
    cmd
}

/// Runs skopeo and returns its output whatever the exit status.
pub fn skopeo(args: &[&str]) -> anyhow::Result<Output> {
    skopeo_command(args)
        .output()
        .map_err(|e| anyhow::anyhow!("running skopeo {args:?}: {e} (run scripts/deps.sh)"))
}

/// Runs skopeo and returns stdout, or an error with its stderr.
pub fn skopeo_ok(args: &[&str]) -> anyhow::Result<String> {
    crate::run_ok(&mut skopeo_command(args))
}

/// `skopeo inspect --raw` of a reference: the manifest bytes exactly as stored.
pub fn raw_manifest(reference: &str) -> anyhow::Result<Vec<u8>> {
    let out = skopeo(&["inspect", "--raw", "--tls-verify=false", reference])?;
    if !out.status.success() {
        anyhow::bail!(
            "skopeo inspect --raw {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// `skopeo inspect --raw` for an `oci:` reference (which rejects `--tls-verify`).
pub fn raw_manifest_oci(reference: &str) -> anyhow::Result<Vec<u8>> {
    let out = skopeo(&["inspect", "--raw", reference])?;
    if !out.status.success() {
        anyhow::bail!(
            "skopeo inspect --raw {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// Copies `src` to `dst` with plain HTTP allowed on both sides and optional credentials
/// (`user:password`) for each.
pub fn copy(
    src: &str,
    dst: &str,
    src_creds: Option<&str>,
    dest_creds: Option<&str>,
) -> anyhow::Result<()> {
    let mut args: Vec<String> = vec!["copy".into(), "--quiet".into()];
    if src.starts_with("docker://") {
        args.push("--src-tls-verify=false".into());
    }
    if dst.starts_with("docker://") {
        args.push("--dest-tls-verify=false".into());
    }
    if let Some(c) = src_creds {
        args.push(format!("--src-creds={c}"));
    }
    if let Some(c) = dest_creds {
        args.push(format!("--dest-creds={c}"));
    }
    args.push(src.into());
    args.push(dst.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    skopeo_ok(&refs).map(|_| ())
}
