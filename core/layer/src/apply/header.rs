//! Reading an entry's header fields and PAX records.

use std::io::Read;

use crate::LayerError;
use crate::root::Meta;

/// Header fields and PAX records of an entry. Also reports whether the
/// entry uses PAX sparse records, which berth does not expand.
pub(super) fn read_meta<R: Read>(
    e: &mut tar::Entry<'_, R>,
    name: &str,
) -> Result<(Meta, bool), LayerError> {
    let bad = |_| LayerError::UnsafePath {
        entry: name.to_string(),
        reason: "its header has a malformed numeric field",
    };
    let h = e.header();
    let mut meta = Meta {
        mode: h.mode().map_err(bad)?,
        uid: h
            .uid()
            .map_err(bad)?
            .try_into()
            .map_err(|_| bad(std::io::ErrorKind::InvalidData.into()))?,
        gid: h
            .gid()
            .map_err(bad)?
            .try_into()
            .map_err(|_| bad(std::io::ErrorKind::InvalidData.into()))?,
        mtime_sec: h.mtime().map_err(bad)?.try_into().unwrap_or(i64::MAX),
        mtime_nsec: 0,
        xattrs: Vec::new(),
    };
    let mut pax_sparse = false;
    let exts = e.pax_extensions().map_err(|source| LayerError::Stream {
        where_: format!("in the PAX records of entry {name:?}"),
        source,
    })?;
    for ext in exts.into_iter().flatten() {
        let ext = ext.map_err(|source| LayerError::Stream {
            where_: format!("in the PAX records of entry {name:?}"),
            source,
        })?;
        let key = ext.key_bytes();
        if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
            // Overlay's own attributes would change how the snapshot is
            // merged (redirects, opacity); layers say that with whiteouts.
            if xattr.starts_with(b"trusted.overlay.") {
                tracing::warn!(entry = %name, xattr = %String::from_utf8_lossy(xattr), "overlay xattr in layer ignored");
                continue;
            }
            meta.xattrs
                .push((xattr.to_vec(), ext.value_bytes().to_vec()));
        } else if key == b"mtime" {
            if let Some((s, ns)) = parse_pax_time(ext.value_bytes()) {
                meta.mtime_sec = s;
                meta.mtime_nsec = ns;
            }
        } else if key.starts_with(b"GNU.sparse.") {
            pax_sparse = true;
        }
    }
    Ok((meta, pax_sparse))
}

/// PAX times are decimal seconds with an optional fraction.
pub(crate) fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut ns: u32 = 0;
    for c in frac.bytes().chain(std::iter::repeat(b'0')).take(9) {
        if !c.is_ascii_digit() {
            return None;
        }
        ns = ns * 10 + u32::from(c - b'0');
    }
    if sec < 0 && ns > 0 {
        // -1.5 means 1.5 s before the epoch.
        return Some((sec - 1, 1_000_000_000 - ns));
    }
    Some((sec, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_pax_time(b"1.123456789123"), Some((1, 123_456_789)));
        assert_eq!(parse_pax_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
