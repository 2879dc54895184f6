//! `pkg-inventory` — a scanner that lists the packages installed in an image, through the
//! host's read-only `rootfs` (it never sees anything outside the image).
//!
//! What it reads:
//! - dpkg: `/var/lib/dpkg/status`, installed packages only; ecosystem `Debian` (`Ubuntu` when
//!   `/etc/os-release` says so); the distribution's name from `/etc/os-release` goes into each
//!   finding's title.
//! - apk: `/lib/apk/db/installed`; ecosystem `Alpine`.
//! - busybox: when `/bin/busybox` exists, the `BusyBox v1.x.y` string inside the binary, read
//!   in 64 KiB chunks (never whole); ecosystem `binary`, package `busybox`.
//!
//! Each package is one finding: kind `package`, id `ECOSYSTEM/NAME`, severity `none`, and the
//! path it came from. An image with none of these gives an empty list.
//!
//! Configuration: none (an empty table).
//!
//! ```toml
//! [[plugin]]
//! name = "pkg-inventory"
//! kind = "scanner"
//! source = "pkg_inventory.wasm"
//! ```

pub mod parse;

use berth_plugin_sdk::prelude::*;
use berth_plugin_sdk::scanner::{FileReader, exists, read_to_string};

use parse::{OsRelease, Package};

/// Package databases larger than this are refused (real ones are a few MiB).
const DB_LIMIT: u64 = 64 << 20;
/// How much of `/bin/busybox` is searched for its version string.
const BUSYBOX_LIMIT: u64 = 16 << 20;

const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const APK_INSTALLED: &str = "/lib/apk/db/installed";
const BUSYBOX: &str = "/bin/busybox";
const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The finding for one package.
pub fn finding(package: &Package, ecosystem: &str, path: &str, distro: &str) -> Finding {
    Finding {
        kind: "package".to_owned(),
        id: format!("{ecosystem}/{}", package.name),
        package: package.name.clone(),
        ecosystem: ecosystem.to_owned(),
        installed_version: package.version.clone(),
        fixed_version: None,
        severity: Severity::None,
        title: if distro.is_empty() {
            format!("{} {}", package.name, package.version)
        } else {
            format!("{} {} ({distro})", package.name, package.version)
        },
        path: path.to_owned(),
    }
}

fn failed(path: &str, err: &FsError) -> ScanError {
    ScanError::Failed(format!("reading {path} in the image: {err}"))
}

/// Reads a file if it exists; `None` when it does not.
fn read_optional(fs: &Rootfs, path: &str) -> Result<Option<String>, ScanError> {
    match read_to_string(fs, path, DB_LIMIT) {
        Ok(text) => Ok(Some(text)),
        Err(FsError::NotFound) | Err(FsError::NotADirectory) => Ok(None),
        Err(err) => Err(failed(path, &err)),
    }
}

fn os_release(fs: &Rootfs) -> Result<OsRelease, ScanError> {
    for path in OS_RELEASE {
        if let Some(text) = read_optional(fs, path)? {
            return Ok(parse::parse_os_release(&text));
        }
    }
    Ok(OsRelease::default())
}

#[derive(Default)]
struct PkgInventory;

impl Scanner for PkgInventory {
    fn scan(&self, image: &ImageInfo, fs: &Rootfs) -> Result<Vec<Finding>, ScanError> {
        let release = os_release(fs)?;
        let distro = release.display_name();
        let mut findings = Vec::new();

        if let Some(text) = read_optional(fs, DPKG_STATUS)? {
            let ecosystem = release.dpkg_ecosystem();
            for package in parse::parse_dpkg_status(&text) {
                findings.push(finding(&package, ecosystem, DPKG_STATUS, &distro));
            }
        }
        if let Some(text) = read_optional(fs, APK_INSTALLED)? {
            for package in parse::parse_apk_installed(&text) {
                findings.push(finding(&package, "Alpine", APK_INSTALLED, &distro));
            }
        }
        if exists(fs, BUSYBOX).map_err(|err| failed(BUSYBOX, &err))? {
            let reader = FileReader::new(fs, BUSYBOX, 64 << 10);
            match parse::find_busybox_version(reader, BUSYBOX_LIMIT) {
                Ok(Some(version)) => {
                    let package = Package {
                        name: "busybox".to_owned(),
                        version,
                    };
                    findings.push(finding(&package, "binary", BUSYBOX, ""));
                }
                Ok(None) => debug!("{BUSYBOX} in {} has no version string", image.reference),
                Err(err) => return Err(ScanError::Failed(format!("reading {BUSYBOX}: {err}"))),
            }
        }
        info!(
            "pkg-inventory: {} packages in {} ({distro})",
            findings.len(),
            image.reference
        );
        Ok(findings)
    }
}

berth_plugin_sdk::export_scanner!(PkgInventory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_carries_ecosystem_path_and_distro() {
        let package = Package {
            name: "libc6".into(),
            version: "2.36-9".into(),
        };
        let f = finding(
            &package,
            "Debian",
            DPKG_STATUS,
            "Debian GNU/Linux 12 (bookworm)",
        );
        assert_eq!(f.kind, "package");
        assert_eq!(f.id, "Debian/libc6");
        assert_eq!(f.installed_version, "2.36-9");
        assert!(matches!(f.severity, Severity::None));
        assert_eq!(f.path, "/var/lib/dpkg/status");
        assert_eq!(f.title, "libc6 2.36-9 (Debian GNU/Linux 12 (bookworm))");
        assert_eq!(
            finding(&package, "binary", BUSYBOX, "").title,
            "libc6 2.36-9"
        );
    }
}
