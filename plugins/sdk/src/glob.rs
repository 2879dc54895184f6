//! Small globs for names: repositories (`team/*`), registries (`localhost:*`), users.
//!
//! `*` matches any run of characters, `/` and `:` included (`team/*` covers `team/app` and
//! `team/app/tools`); `?` matches one character; everything else matches itself. There is no
//! escaping and no character classes: names in berth never contain `*` or `?`.

/// Whether `text` matches `pattern` as a whole.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear in practice and no
    // recursion, so a hostile pattern cannot blow the guest's small stack.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether `text` matches any of `patterns`.
pub fn matches_any<S: AsRef<str>>(patterns: &[S], text: &str) -> bool {
    patterns.iter().any(|p| glob_match(p.as_ref(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_star_and_question_mark() {
        assert!(glob_match("docker.io", "docker.io"));
        assert!(!glob_match("docker.io", "docker.iox"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything/at:all"));
        assert!(glob_match("localhost:*", "localhost:5000"));
        assert!(!glob_match("localhost:*", "localhost"));
        assert!(glob_match("team/*", "team/app"));
        assert!(glob_match("team/*", "team/app/tools"));
        assert!(!glob_match("team/*", "teams/app"));
        assert!(glob_match("*.example.com", "registry.example.com"));
        assert!(!glob_match("*.example.com", "example.com"));
        assert!(glob_match("v?", "v1"));
        assert!(!glob_match("v?", "v10"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn matches_any_of_a_list() {
        let allowed = ["docker.io", "localhost:*"];
        assert!(matches_any(&allowed, "localhost:5000"));
        assert!(!matches_any(&allowed, "quay.io"));
        assert!(!matches_any::<&str>(&[], "quay.io"));
    }
}
