//! Tar entry paths, as every reader of untrusted tar streams in berth
//! takes them: layers here, image archives in `berth-image`. A path is
//! normalised once ([`normalize`]: no `.`, no empty components) and
//! refused when it could climb out (`..`, absolute) or could never be a
//! real path (a NUL byte, longer than [`PATH_MAX`]); error messages and
//! logs show it through [`shown`], which never repeats a megabyte-long
//! name whole.

/// Linux's `PATH_MAX`: entry paths and link targets longer than this are
/// refused (the kernel could not open them by name anyway).
pub const PATH_MAX: usize = 4096;

/// How much of a path longer than [`PATH_MAX`] [`shown`] keeps.
const SHOWN_PREFIX: usize = 256;

/// An entry path or link target as error messages and logs show it: whole
/// up to [`PATH_MAX`] (longer ones are refused), else its start and
/// length, so a refused megabyte-long name is not repeated to the user
/// whole.
///
/// ```
/// assert_eq!(berth_layer::path::shown(b"etc/passwd"), "etc/passwd");
/// assert!(berth_layer::path::shown(&[b'x'; 1 << 20]).ends_with("(1048576 bytes)"));
/// ```
pub fn shown(raw: &[u8]) -> String {
    if raw.len() <= PATH_MAX {
        return String::from_utf8_lossy(raw).into_owned();
    }
    format!(
        "{}… ({} bytes)",
        String::from_utf8_lossy(&raw[..SHOWN_PREFIX]),
        raw.len()
    )
}

/// Normalise an entry path (`./a//b/` → `a/b`; the root is empty).
/// Refuses `..` components, absolute paths, NUL bytes and paths longer
/// than [`PATH_MAX`], saying which ("it is an absolute path": the
/// reason reads after "entry NAME is refused:").
///
/// ```
/// use berth_layer::path::normalize;
/// assert_eq!(normalize(b"./blobs//sha256/ab").unwrap(), b"blobs/sha256/ab");
/// assert!(normalize(b"../etc/passwd").is_err());
/// ```
pub fn normalize(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    if raw.len() > PATH_MAX {
        return Err("it is longer than PATH_MAX (4096 bytes)");
    }
    if raw.first() == Some(&b'/') {
        return Err("it is an absolute path");
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("it has a `..` component"),
            c if c.contains(&0) => return Err("it has a NUL byte"),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails loudly")]
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert!(normalize(b"../x").is_err());
        assert!(normalize(b"a/../../x").is_err());
        assert!(normalize(b"/etc/x").is_err());
        assert!(normalize(b"a\0b").is_err());
        assert!(normalize(&[b'a'; PATH_MAX]).is_ok());
        let long = normalize(&[b'a'; PATH_MAX + 1]).unwrap_err();
        assert!(long.contains("PATH_MAX"), "{long}");
    }

    #[test]
    fn shows_long_names_shortened() {
        assert_eq!(shown(b"a/b"), "a/b");
        let long = shown(&[b'x'; 5000]);
        assert!(long.len() < 300 && long.ends_with("(5000 bytes)"), "{long}");
    }
}
