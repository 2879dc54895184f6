//! Archive path hygiene. Archive paths are only map keys here, never file
//! system paths, but an archive that tries to climb out (`../x`, `/etc/x`)
//! is hostile or broken either way, so it is refused outright.

use crate::ImageError;

/// `./blobs//sha256/x` → `blobs/sha256/x`; absolute paths and `..` are refused.
pub(crate) fn normalize(raw: &str) -> Result<String, ImageError> {
    if raw.starts_with('/') {
        return Err(ImageError::UnsafePath(raw.to_string()));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(ImageError::UnsafePath(raw.to_string())),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Resolve link `target` seen in directory `base` to a normalised archive
/// path; `..` may climb within the archive but not out of it.
pub(crate) fn resolve_link(base: &str, target: &str, entry: &str) -> Result<String, ImageError> {
    if target.starts_with('/') {
        return Err(ImageError::UnsafePath(format!("{entry} -> {target}")));
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
                    return Err(ImageError::UnsafePath(format!("{entry} -> {target}")));
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
        assert_eq!(normalize("./blobs//sha256/ab").unwrap(), "blobs/sha256/ab");
        assert_eq!(normalize("index.json").unwrap(), "index.json");
        for bad in ["../x", "a/../../x", "/etc/passwd", "a/.."] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
        assert_eq!(
            resolve_link("abc", "../def/layer.tar", "abc/layer.tar").unwrap(),
            "def/layer.tar"
        );
        assert!(resolve_link("abc", "../../x", "abc/l").is_err());
        assert!(resolve_link("", "/x", "l").is_err());
    }
}
