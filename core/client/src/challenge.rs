//! Parsing of `WWW-Authenticate` headers (RFC 9110 section 11.6.1) into the
//! challenges registries send: `Basic realm=…` and Docker's token auth
//! `Bearer realm=…,service=…,scope=…`.
//!
//! One header may carry several challenges separated by commas, and the
//! same commas separate a challenge's parameters; a new challenge is told
//! apart by a token that is *not* followed by `=`.

use std::collections::BTreeMap;

/// Why a header could not be read as challenges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("WWW-Authenticate header {0:?} is malformed")]
    Malformed(String),
    #[error("Bearer challenge {0:?} has no realm to ask for a token")]
    BearerWithoutRealm(String),
    #[error("no Basic or Bearer challenge in WWW-Authenticate {0:?}")]
    NoUsableScheme(String),
}

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        /// Space-separated scopes, as the registry sent them.
        scope: Option<String>,
    },
    /// A scheme berth does not speak, kept so errors can name it.
    Other {
        scheme: String,
        params: BTreeMap<String, String>,
    },
}

/// Parse every challenge of one header value.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Parser {
        s: header.as_bytes(),
        pos: 0,
    };
    let malformed = || ChallengeError::Malformed(header.to_string());
    let mut out = Vec::new();
    loop {
        p.skip(|b| b == b' ' || b == b'\t' || b == b',');
        if p.at_end() {
            break;
        }
        let scheme = p.token().ok_or_else(malformed)?.to_ascii_lowercase();
        let mut params = BTreeMap::new();
        // token68 form (`Basic abc==`) is allowed by the RFC but unused by
        // registries; accept and ignore it rather than refuse the header.
        let before = p.pos;
        p.skip_ws();
        let is_token68 = p.token68().is_some() && p.peek_after_ws().is_none_or(|b| b == b',');
        if !is_token68 {
            p.pos = before;
        }
        loop {
            let save = p.pos;
            p.skip(|b| b == b' ' || b == b'\t' || b == b',');
            let Some(name) = p.token() else {
                p.pos = save;
                break;
            };
            p.skip_ws();
            if p.peek() != Some(b'=') {
                // Not a parameter: it begins the next challenge.
                p.pos = save;
                break;
            }
            p.pos += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted().ok_or_else(malformed)?
            } else {
                // Be lenient: registries send unquoted URLs as realms,
                // which are not RFC tokens.
                p.bare_value().ok_or_else(malformed)?.to_string()
            };
            params.entry(name.to_ascii_lowercase()).or_insert(value);
            p.skip_ws();
            match p.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(malformed()),
            }
        }
        out.push(build(scheme, params, header)?);
    }
    Ok(out)
}

/// Parse all `WWW-Authenticate` values of a response and pick the
/// challenge berth should answer: Bearer before Basic.
pub fn preferred_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge, ChallengeError> {
    let mut all = Vec::new();
    let mut seen = Vec::new();
    for v in values {
        seen.push(v.to_string());
        all.extend(parse_challenges(v)?);
    }
    let bearer = all
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .cloned();
    let basic = all
        .iter()
        .find(|c| matches!(c, Challenge::Basic { .. }))
        .cloned();
    bearer
        .or(basic)
        .ok_or_else(|| ChallengeError::NoUsableScheme(seen.join(", ")))
}

fn build(
    scheme: String,
    mut params: BTreeMap<String, String>,
    header: &str,
) -> Result<Challenge, ChallengeError> {
    Ok(match scheme.as_str() {
        "basic" => Challenge::Basic {
            realm: params.remove("realm"),
        },
        "bearer" => Challenge::Bearer {
            realm: params
                .remove("realm")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ChallengeError::BearerWithoutRealm(header.to_string()))?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        },
        _ => Challenge::Other { scheme, params },
    })
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_after_ws(&self) -> Option<u8> {
        self.s[self.pos.min(self.s.len())..]
            .iter()
            .copied()
            .find(|b| *b != b' ' && *b != b'\t')
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
    }

    fn skip_ws(&mut self) {
        self.skip(|b| b == b' ' || b == b'\t');
    }

    /// RFC 9110 `token`: visible ASCII except delimiters.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if self.pos == start {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.pos]).ok()
    }

    /// An unquoted parameter value: anything up to whitespace or a comma.
    fn bare_value(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.skip(|b| b > b' ' && b != b',' && b != b'"' && b != 0x7f);
        if self.pos == start {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.pos]).ok()
    }

    /// `token68`, looked at only to be skipped over correctly.
    fn token68(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.skip(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        self.skip(|b| b == b'=');
        if self.pos == start {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.pos]).ok()
    }

    /// A quoted-string with backslash escapes; the opening quote is at `pos`.
    fn quoted(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    out.push(self.peek()?);
                    self.pos += 1;
                }
                _ => out.push(b),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        }
    }

    #[test]
    fn docker_hub_bearer() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenges(h).unwrap(),
            vec![bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/busybox:pull")
            )]
        );
    }

    #[test]
    fn scope_with_several_actions_and_scopes() {
        let h = r#"Bearer realm="https://r/token",service="r",scope="repository:a/b:pull,push repository:c:pull""#;
        let c = parse_challenges(h).unwrap();
        assert_eq!(
            c,
            vec![bearer(
                "https://r/token",
                Some("r"),
                Some("repository:a/b:pull,push repository:c:pull")
            )]
        );
    }

    #[test]
    fn basic_with_and_without_realm() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#).unwrap(),
            vec![Challenge::Basic {
                realm: Some("Registry Realm".into())
            }]
        );
        assert_eq!(
            parse_challenges("Basic").unwrap(),
            vec![Challenge::Basic { realm: None }]
        );
    }

    #[test]
    fn case_whitespace_and_unquoted_values() {
        let h = "  bEaReR   Realm = https://x/t ,  SERVICE=reg ,scope=\"a:b:pull\"  ";
        assert_eq!(
            parse_challenges(h).unwrap(),
            vec![bearer("https://x/t", Some("reg"), Some("a:b:pull"))]
        );
    }

    #[test]
    fn escapes_in_quoted_strings() {
        let h = r#"Basic realm="say \"hi\" \\ there""#;
        assert_eq!(
            parse_challenges(h).unwrap(),
            vec![Challenge::Basic {
                realm: Some(r#"say "hi" \ there"#.into())
            }]
        );
    }

    #[test]
    fn several_challenges_in_one_header() {
        let h = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Bearer realm="https://t",service=s"#;
        let c = parse_challenges(h).unwrap();
        assert_eq!(c.len(), 3);
        assert!(
            matches!(&c[0], Challenge::Other { scheme, params } if scheme == "newauth" && params.len() == 3)
        );
        assert_eq!(
            c[1],
            Challenge::Basic {
                realm: Some("simple".into())
            }
        );
        assert_eq!(c[2], bearer("https://t", Some("s"), None));
    }

    #[test]
    fn preferred_picks_bearer_across_header_lines() {
        let c = preferred_challenge([r#"Basic realm="x""#, r#"Bearer realm="https://t""#]).unwrap();
        assert_eq!(c, bearer("https://t", None, None));
        let c = preferred_challenge([r#"Basic realm="x""#]).unwrap();
        assert!(matches!(c, Challenge::Basic { .. }));
        assert!(matches!(
            preferred_challenge([r#"Digest realm="x", nonce="y""#]),
            Err(ChallengeError::NoUsableScheme(_))
        ));
        assert!(matches!(
            preferred_challenge([]),
            Err(ChallengeError::NoUsableScheme(_))
        ));
    }

    #[test]
    fn empty_commas_and_duplicates() {
        let h = r#"Bearer ,realm="https://a",, realm="https://b",service="s""#;
        assert_eq!(
            parse_challenges(h).unwrap(),
            vec![bearer("https://a", Some("s"), None)]
        );
        assert_eq!(parse_challenges("").unwrap(), vec![]);
        assert_eq!(parse_challenges(" , ").unwrap(), vec![]);
    }

    #[test]
    fn refuses_broken_headers() {
        // Read as token68 by the RFC's grammar, so refused for lack of realm.
        assert!(parse_challenges(r#"Bearer realm="#).is_err());
        for bad in [
            r#"Bearer realm="unterminated"#,
            r#"Bearer realm="a",="b""#,
            r#"Bearer realm="a" junk"#,
            "=realm",
            r#"Bearer realm="a\"#,
        ] {
            assert!(
                matches!(parse_challenges(bad), Err(ChallengeError::Malformed(_))),
                "{bad:?} accepted: {:?}",
                parse_challenges(bad)
            );
        }
        assert!(matches!(
            parse_challenges(r#"Bearer service="s""#),
            Err(ChallengeError::BearerWithoutRealm(_))
        ));
        assert!(matches!(
            parse_challenges(r#"Bearer realm="""#),
            Err(ChallengeError::BearerWithoutRealm(_))
        ));
    }

    #[test]
    fn token68_is_tolerated() {
        let c = parse_challenges("Negotiate abc123==, Basic realm=\"r\"").unwrap();
        assert_eq!(
            c.last(),
            Some(&Challenge::Basic {
                realm: Some("r".into())
            })
        );
    }
}
