//! Archive path hygiene, by the rules every tar reader in berth applies
//! ([`berth_layer::path`]): no `..`, no absolute paths, nothing longer
//! than `PATH_MAX`. Archive paths are only map keys here, never file
//! system paths, but an archive that tries to climb out (`../x`,
//! `/etc/x`) is hostile or broken either way, and every path kept costs
//! memory until the archive ends, so such an archive is refused outright.

use berth_layer::path::{PATH_MAX, shown};

use crate::ImageError;

/// `./blobs//sha256/x` → `blobs/sha256/x`; absolute paths, `..` and paths
/// longer than `PATH_MAX` are refused.
pub(crate) fn normalize(raw: &[u8]) -> Result<String, ImageError> {
    let path = berth_layer::path::normalize(raw).map_err(|reason| ImageError::UnsafePath {
        entry: shown(raw),
        reason,
    })?;
    Ok(String::from_utf8_lossy(&path).into_owned())
}

/// Resolve link `target` seen in directory `base` to a normalised archive
/// path; `..` may climb within the archive but not out of it.
pub(crate) fn resolve_link(base: &str, target: &[u8], entry: &[u8]) -> Result<String, ImageError> {
    let refuse = |reason| ImageError::UnsafePath {
        entry: format!("{} -> {}", shown(entry), shown(target)),
        reason,
    };
    if target.len() > PATH_MAX {
        return Err(refuse(
            "its link target is longer than PATH_MAX (4096 bytes)",
        ));
    }
    let target = String::from_utf8_lossy(target);
    if target.starts_with('/') {
        return Err(refuse("its link target is an absolute path"));
    }
    let mut parts: Vec<&str> = base
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(refuse("its link target climbs out of the archive"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "a test fails loudly on any unexpected error"
    )]
    use super::*;

    #[test]
    fn normalizes_and_refuses_escapes() {
        assert_eq!(normalize(b"./blobs//sha256/ab").unwrap(), "blobs/sha256/ab");
        assert_eq!(normalize(b"index.json").unwrap(), "index.json");
        for bad in ["../x", "a/../../x", "/etc/passwd", "a/.."] {
            assert!(normalize(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            resolve_link("abc", b"../def/layer.tar", b"abc/layer.tar").unwrap(),
            "def/layer.tar"
        );
        assert!(resolve_link("abc", b"../../x", b"abc/l").is_err());
        assert!(resolve_link("", b"/x", b"l").is_err());
    }

    #[test]
    fn refuses_names_past_path_max_without_repeating_them() {
        let long = vec![b'x'; 1 << 20];
        let err = normalize(&long).unwrap_err().to_string();
        assert!(err.contains("PATH_MAX") && err.len() < 1024, "{err}");
        let err = resolve_link("", &long, b"l").unwrap_err().to_string();
        assert!(err.contains("PATH_MAX") && err.len() < 1024, "{err}");
    }
}
