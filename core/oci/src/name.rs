//! Validation of repository names and tags as the distribution spec defines
//! them. Everything that becomes a key or a path passes through here, so
//! `..`, `%2e`, empty components and upper case never reach storage.

/// Why a repository name or tag was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "repository name {0:?} is invalid: use lowercase path components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/'"
    )]
    Repository(String),
    #[error("repository name is {0} characters long; the limit is 255")]
    TooLong(usize),
    #[error(
        "tag {0:?} is invalid: use up to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
    )]
    Tag(String),
}

const MAX_NAME: usize = 255;

/// Check `name` against `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn validate_repository(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong(name.len()));
    }
    if name.is_empty() || !name.split('/').all(component_ok) {
        return Err(NameError::Repository(name.to_string()));
    }
    Ok(())
}

fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        let sep = b[i];
        while i < b.len() && b[i] == sep {
            i += 1;
        }
        let run = i - start;
        let ok = match sep {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Check `tag` against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), NameError> {
    let b = tag.as_bytes();
    let first = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let rest = |x: u8| first(x) || x == b'.' || x == b'-';
    if b.is_empty() || b.len() > 128 || !first(b[0]) || !b[1..].iter().all(|&x| rest(x)) {
        return Err(NameError::Tag(tag.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spec_names() {
        for ok in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g-h/i---j",
            "x9/0y",
            "berth-e2e/multi.layer",
        ] {
            assert!(validate_repository(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_path_tricks_and_bad_names() {
        for bad in [
            "", "..", "../etc", "a/../b", "a/./b", "%2e%2e", "a//b", "/a", "a/", "A", "a..b",
            "a___b", "-a", "a-", "a b", "a\\b", ".hidden",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            validate_repository(&"a".repeat(256)),
            Err(NameError::TooLong(256))
        ));
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.2.3", "_x", "A-b_c.d"] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad:?} accepted");
        }
    }
}
