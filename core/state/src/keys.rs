//! Composite keys. Repository names, tags and digests never contain NUL, so
//! NUL separates the parts and prefix scans stay exact.

pub(crate) fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// Prefix matching every key that starts with these parts.
pub(crate) fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

/// The last part of a key.
pub(crate) fn last(k: &[u8]) -> String {
    let s = String::from_utf8_lossy(k);
    s.rsplit('\0').next().unwrap_or_default().to_string()
}
