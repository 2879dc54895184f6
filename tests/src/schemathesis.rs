//! Where schemathesis is: the virtualenv `scripts/schemathesis.sh` makes (run by
//! `scripts/deps.sh`), at the version `tests/requirements-schemathesis.txt` pins.

use std::path::PathBuf;
use std::process::Command;

/// The pinned requirement, shared with `scripts/schemathesis.sh`.
const REQUIREMENTS: &str = include_str!("../requirements-schemathesis.txt");

/// The pinned schemathesis version.
pub fn version() -> anyhow::Result<&'static str> {
    REQUIREMENTS
        .lines()
        .find_map(|l| l.trim().strip_prefix("schemathesis=="))
        .map(str::trim)
        .ok_or_else(|| anyhow::anyhow!("tests/requirements-schemathesis.txt pins no schemathesis"))
}

/// The `st` command of the pinned version, or an error saying how to install it.
pub fn st() -> anyhow::Result<PathBuf> {
    let version = version()?;
    let tools = std::env::var_os("BERTH_TOOLS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/berth")))
        .ok_or_else(|| anyhow::anyhow!("neither BERTH_TOOLS_DIR nor HOME is set"))?;
    let st = tools.join(format!("schemathesis-{version}/bin/st"));
    let install = "install it with scripts/deps.sh (or scripts/schemathesis.sh)";
    let out = Command::new(&st)
        .arg("--version")
        .output()
        .map_err(|e| anyhow::anyhow!("running {}: {e}; {install}", st.display()))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || said.trim() != format!("st, version {version}") {
        anyhow::bail!(
            "{} --version said {:?}, not schemathesis {version}; {install}",
            st.display(),
            said.trim()
        );
    }
    Ok(st)
}
