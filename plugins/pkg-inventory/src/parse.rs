//! Parsers for what the scanner reads: dpkg's status file, apk's installed database,
//! `/etc/os-release`, and the version string inside a busybox binary.

use std::io::{self, Read};

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// Installed packages from dpkg's `/var/lib/dpkg/status`: paragraphs of `Field: value` lines
/// separated by blank lines. Only packages whose `Status` is `... installed` count (a removed
/// package keeps a paragraph with `deinstall ok config-files`).
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    for paragraph in paragraphs(text) {
        let (mut name, mut version, mut installed) = (None, None, false);
        for line in paragraph.lines() {
            // Continuation lines (descriptions, conffiles) start with whitespace.
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match field {
                "Package" => name = Some(value),
                "Version" => version = Some(value),
                "Status" => installed = value.split_whitespace().nth(2) == Some("installed"),
                _ => {}
            }
        }
        if let (Some(name), Some(version), true) = (name, version, installed) {
            packages.push(Package {
                name: name.to_owned(),
                version: version.to_owned(),
            });
        }
    }
    packages
}

/// Installed packages from apk's `/lib/apk/db/installed`: records of `X:value` lines separated
/// by blank lines; `P` is the name, `V` the version.
pub fn parse_apk_installed(text: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    for record in paragraphs(text) {
        let (mut name, mut version) = (None, None);
        for line in record.lines() {
            if let Some(value) = line.strip_prefix("P:") {
                name = Some(value.trim());
            } else if let Some(value) = line.strip_prefix("V:") {
                version = Some(value.trim());
            }
        }
        if let (Some(name), Some(version)) = (name, version) {
            packages.push(Package {
                name: name.to_owned(),
                version: version.to_owned(),
            });
        }
    }
    packages
}

fn paragraphs(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = text
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .peekable();
    std::iter::from_fn(move || {
        while lines.peek().is_some_and(|line| line.trim().is_empty()) {
            lines.next();
        }
        lines.peek()?;
        let mut paragraph = String::new();
        while let Some(line) = lines.next_if(|line| !line.trim().is_empty()) {
            paragraph.push_str(line);
            paragraph.push('\n');
        }
        Some(paragraph)
    })
}

/// What `/etc/os-release` says about the distribution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `ubuntu`, `alpine`.
    pub id: String,
    /// `ID_LIKE`, split, e.g. `["debian"]` for Ubuntu.
    pub id_like: Vec<String>,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: String,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub pretty_name: String,
}

/// Parses os-release's `KEY=value` lines (values optionally quoted).
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut release = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_owned();
        match key {
            "ID" => release.id = value,
            "ID_LIKE" => release.id_like = value.split_whitespace().map(str::to_owned).collect(),
            "VERSION_ID" => release.version_id = value,
            "PRETTY_NAME" => release.pretty_name = value,
            _ => {}
        }
    }
    release
}

impl OsRelease {
    /// The OSV ecosystem of dpkg packages on this distribution: `Ubuntu` for Ubuntu,
    /// `Debian` for Debian and the derivatives that do not say otherwise.
    pub fn dpkg_ecosystem(&self) -> &'static str {
        if self.id == "ubuntu" {
            "Ubuntu"
        } else {
            "Debian"
        }
    }

    /// A name for titles: `PRETTY_NAME`, else `ID VERSION_ID`, else `unknown distribution`.
    pub fn display_name(&self) -> String {
        if !self.pretty_name.is_empty() {
            self.pretty_name.clone()
        } else if !self.id.is_empty() {
            format!("{} {}", self.id, self.version_id).trim().to_owned()
        } else {
            "unknown distribution".to_owned()
        }
    }
}

const BUSYBOX_MARKER: &[u8] = b"BusyBox v";

/// Finds `BusyBox v1.x.y` in a binary read in chunks, returning `1.x.y`. Keeps a tail of each
/// chunk so a marker split across two chunks is still found; never holds the whole binary.
pub fn find_busybox_version(mut reader: impl Read, max_bytes: u64) -> io::Result<Option<String>> {
    const CHUNK: usize = 64 << 10;
    // Marker plus room for the longest version we accept.
    const TAIL: usize = 64;
    let mut window: Vec<u8> = Vec::with_capacity(CHUNK + TAIL);
    let mut chunk = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut chunk)?;
        let at_end = n == 0;
        window.extend_from_slice(&chunk[..n]);
        total += n as u64;
        let mut from = 0;
        while let Some(pos) = find(&window[from..], BUSYBOX_MARKER) {
            let start = from + pos + BUSYBOX_MARKER.len();
            let version: Vec<u8> = window[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b'.')
                .copied()
                .collect();
            let complete = start + version.len() < window.len() || at_end;
            if !complete {
                // The version may go on in the next chunk: look again with more bytes.
                break;
            }
            if version.first().is_some_and(u8::is_ascii_digit) {
                return Ok(Some(String::from_utf8_lossy(&version).into_owned()));
            }
            from = start;
        }
        if at_end || total >= max_bytes {
            return Ok(None);
        }
        let keep = window.len().min(TAIL);
        window.drain(..window.len() - keep);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DPKG: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 More text with Version: 9.9 that is not a field.

Package: oldpkg
Status: deinstall ok config-files
Version: 1.0

Package: bash
Status: install ok installed
Version: 5.2.15-2+b2

Package: half
Status: install ok half-installed
Version: 0.1
";

    #[test]
    fn dpkg_lists_only_installed_packages() {
        assert_eq!(
            parse_dpkg_status(DPKG),
            vec![
                Package {
                    name: "libc6".into(),
                    version: "2.36-9+deb12u4".into()
                },
                Package {
                    name: "bash".into(),
                    version: "5.2.15-2+b2".into()
                },
            ]
        );
        assert!(parse_dpkg_status("").is_empty());
    }

    #[test]
    fn apk_records() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nC:Q1def=\nP:busybox\nV:1.36.1-r15\n\nP:broken\n";
        assert_eq!(
            parse_apk_installed(text),
            vec![
                Package {
                    name: "musl".into(),
                    version: "1.2.4-r2".into()
                },
                Package {
                    name: "busybox".into(),
                    version: "1.36.1-r15".into()
                },
            ]
        );
    }

    #[test]
    fn os_release_fields_and_ecosystem() {
        let debian = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(debian.id, "debian");
        assert_eq!(debian.version_id, "12");
        assert_eq!(debian.dpkg_ecosystem(), "Debian");
        assert_eq!(debian.display_name(), "Debian GNU/Linux 12 (bookworm)");
        let ubuntu = parse_os_release("ID=ubuntu\nID_LIKE=debian\nVERSION_ID='22.04'\n");
        assert_eq!(ubuntu.dpkg_ecosystem(), "Ubuntu");
        assert_eq!(ubuntu.id_like, vec!["debian"]);
        assert_eq!(ubuntu.display_name(), "ubuntu 22.04");
        assert_eq!(parse_os_release("").display_name(), "unknown distribution");
    }

    #[test]
    fn busybox_version_in_a_binary_even_across_chunks() {
        let mut binary = vec![0u8; 200_000];
        binary.extend_from_slice(b"\0BusyBox v\0 decoy\0");
        // Put the real marker across the 64 KiB boundary of the second read.
        let at = 3 * (64 << 10) - 12;
        let text = b"BusyBox v1.36.1 (2024-06-10 07:11:47 UTC) multi-call binary.";
        binary.resize(at, 0x90);
        binary.extend_from_slice(text);
        binary.extend_from_slice(&[0u8; 1000]);
        let version = find_busybox_version(&binary[..], u64::MAX).unwrap();
        assert_eq!(version.as_deref(), Some("1.36.1"));
        let none = find_busybox_version(&[0u8; 100_000][..], u64::MAX).unwrap();
        assert_eq!(none, None);
        // The version right at the end of the file is still complete.
        let end = find_busybox_version(&b"xxBusyBox v1.2.3"[..], u64::MAX).unwrap();
        assert_eq!(end.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn busybox_search_stops_at_the_byte_limit() {
        let mut binary = vec![0u8; 1 << 20];
        binary.extend_from_slice(b"BusyBox v1.0.0 ");
        assert_eq!(find_busybox_version(&binary[..], 256 << 10).unwrap(), None);
    }
}
