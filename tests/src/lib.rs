//! End-to-end test harness for berth: it starts the real binaries (`berthd`, `berth`) and
//! real peers (`docker-registry`, `skopeo`) on loopback, on temporary roots, and offers the
//! small tools the tests in `tests/tests/` share.
//!
//! It owns process lifecycles (start, readiness, kill on drop, logs shown on failure),
//! fixture images (built by `scripts/make-image.sh`, cached per test process) and a raw
//! HTTP/1.1 client that can send what a well-behaved client would not. It must never mock
//! a peer, reach beyond loopback, or skip a test because a tool is missing: a missing tool
//! is an error that says what to install (`scripts/deps.sh`).
//!
//! ```no_run
//! use berth_e2e::{Berthd, fixture, skopeo_ok};
//! # fn main() -> anyhow::Result<()> {
//! let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
//! let image = fixture::small()?;
//! skopeo_ok(&["copy", "--dest-tls-verify=false",
//!     &image.oci_ref(), &format!("docker://{}/e2e/busybox:v1", daemon.registry())])?;
//! # Ok(()) }
//! ```

pub mod berthd;
pub mod bins;
pub mod containers;
pub mod docker_registry;
pub mod fixture;
pub mod http;
pub mod images;
pub mod layout;
pub mod net;
pub mod process;
pub mod schemathesis;
pub mod skopeo;
pub mod suites;
pub mod unix_proxy;

pub use berthd::Berthd;
pub use docker_registry::{DockerRegistry, RegistryOpts};
pub use fixture::Image;
pub use skopeo::{skopeo, skopeo_ok};

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Hex sha256 of bytes, prefixed with `sha256:`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Hex sha256 of a file, streamed, prefixed with `sha256:`.
pub fn sha256_file(path: &std::path::Path) -> anyhow::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("opening {} to hash it: {e}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Runs a command, returning stdout; on failure, an error with the command line, status and
/// stderr.
pub fn run_ok(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    let out = cmd.output().map_err(|e| {
        anyhow::anyhow!("spawning {cmd:?}: {e} (is it installed? run scripts/deps.sh)")
    })?;
    if !out.status.success() {
        anyhow::bail!(
            "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
