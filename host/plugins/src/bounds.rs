//! How much of what a plugin returns berth keeps: every string and list the
//! host takes from a guest (deny reasons, log records, principal names and
//! groups, findings, patches, storage messages, a panic's text) passes
//! through here and is cut to a size a user, a log line or a container
//! spec can carry, with a note saying so. A guest can still build a large
//! value in its own memory (up to its cap); it cannot make berth show,
//! log or store it.

/// A message shown to a user or written to the log: a deny reason, a
/// plugin's error message, a panic.
pub(crate) const MESSAGE: usize = 4 * 1024;
/// A log record from the guest's `log.emit`.
pub(crate) const LOG: usize = 8 * 1024;
/// A name: a user, a group, a label key, a package, a digest.
pub(crate) const NAME: usize = 256;
/// A value that is more than a name: a label value, an environment entry,
/// a finding's title, a path.
pub(crate) const VALUE: usize = 4 * 1024;
/// Entries of a small list: groups, labels, environment entries, log
/// fields.
pub(crate) const ENTRIES: usize = 256;
/// Findings of one scan.
pub(crate) const FINDINGS: usize = 100_000;

/// `s`, cut at a character boundary to at most `max` bytes plus a note of
/// how much was cut.
pub(crate) fn text(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let total = s.len();
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(&format!(" [... {} more bytes cut by berth]", total - cut));
    s
}

/// The first `max` entries of `items`, each passed through `each`; a list
/// that was longer is reported once in the log (its entries carry no room
/// for a note).
pub(crate) fn list<T, U>(
    plugin: &str,
    what: &str,
    items: Vec<T>,
    max: usize,
    each: impl FnMut(T) -> U,
) -> Vec<U> {
    if items.len() > max {
        tracing::warn!(
            plugin,
            what,
            returned = items.len(),
            kept = max,
            "plugin returned a list longer than berth keeps; the rest was dropped"
        );
    }
    items.into_iter().take(max).map(each).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched_and_long_text_is_cut_with_a_note() {
        assert_eq!(text("deny".into(), 10), "deny");
        let cut = text("x".repeat(48 << 20), MESSAGE);
        assert!(cut.len() < MESSAGE + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!(
            "[... {} more bytes cut by berth]",
            (48 << 20) - MESSAGE
        )));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let cut = text("é".repeat(10), 5);
        assert!(cut.starts_with("éé ["), "{cut}");
    }

    #[test]
    fn lists_keep_their_first_entries() {
        let kept = list("p", "groups", (0..10).collect(), 3, |n: i32| n * 2);
        assert_eq!(kept, vec![0, 2, 4]);
    }
}
