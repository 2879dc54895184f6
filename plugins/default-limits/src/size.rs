//! Sizes as operators write them: `1048576`, `512k`, `256m`, `1g`, `256MiB`, `2GB`.

/// Why a size string was not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    /// No digits, or the number is not a whole number.
    #[error("{input:?} is not a size: write bytes, or a number with k, m, g or t (e.g. \"256m\")")]
    Malformed { input: String },
    /// A unit berth does not know.
    #[error("{input:?} has an unknown unit {unit:?}: use k, m, g or t (powers of 1024)")]
    UnknownUnit { input: String, unit: String },
    /// More than `u64::MAX` bytes.
    #[error("{input:?} is too large")]
    Overflow { input: String },
}

/// Parses a size in bytes. Units are powers of 1024 (as Docker's `-m`), case-insensitive,
/// optionally followed by `b` or `ib`: `256m` = `256MB` = `256MiB` = 268435456.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let text = input.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let malformed = || SizeError::Malformed {
        input: input.to_owned(),
    };
    if digits.is_empty() {
        return Err(malformed());
    }
    let number: u64 = digits.parse().map_err(|_| SizeError::Overflow {
        input: input.to_owned(),
    })?;
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ if unit.starts_with('.') => return Err(malformed()),
        _ => {
            return Err(SizeError::UnknownUnit {
                input: input.to_owned(),
                unit,
            });
        }
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow {
            input: input.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_powers_of_1024() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("256MB"), Ok(256 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size(" 1g "), Ok(1 << 30));
        assert_eq!(parse_size("2t"), Ok(2 << 40));
        assert_eq!(parse_size("10b"), Ok(10));
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        assert!(matches!(parse_size(""), Err(SizeError::Malformed { .. })));
        assert!(matches!(parse_size("m"), Err(SizeError::Malformed { .. })));
        assert!(matches!(
            parse_size("1.5g"),
            Err(SizeError::Malformed { .. })
        ));
        assert!(matches!(parse_size("-1"), Err(SizeError::Malformed { .. })));
        assert_eq!(
            parse_size("5x"),
            Err(SizeError::UnknownUnit {
                input: "5x".into(),
                unit: "x".into()
            })
        );
        assert!(matches!(
            parse_size("99999999999t"),
            Err(SizeError::Overflow { .. })
        ));
        assert!(matches!(
            parse_size("99999999999999999999999"),
            Err(SizeError::Overflow { .. })
        ));
        let message = parse_size("lots").unwrap_err().to_string();
        assert!(message.contains("\"256m\""), "{message}");
    }
}
