//! Grants: what a user may do where, written `ACTIONS:GLOB` or `admin`.
//!
//! `ACTIONS` is a comma-separated subset of `pull,push,delete`, or `*` for
//! all three. `GLOB` matches repository names; `*` matches any run of
//! characters *including* `/`, as Distribution's and Zot's access-control
//! globs do, so `team/*` covers `team/app` and `team/app/web` (but not
//! `team` itself) and `*` covers every repository. `?`, `[...]` and `{a,b}`
//! work as in globset. `admin` grants every action everywhere, including the
//! registry-wide ones (catalog, garbage collection).

use globset::{GlobBuilder, GlobMatcher};

use crate::{Action, AuthError};

/// One parsed grant.
#[derive(Debug, Clone)]
pub struct Grant {
    spec: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Admin,
    Repositories {
        actions: Vec<Action>,
        glob: GlobMatcher,
    },
}

impl Grant {
    /// Parse `admin` or `ACTIONS:GLOB`.
    pub fn parse(spec: &str) -> Result<Grant, AuthError> {
        let spec = spec.trim();
        let invalid = |reason: String| AuthError::InvalidGrant {
            grant: spec.to_string(),
            reason,
        };
        if spec == "admin" {
            return Ok(Grant {
                spec: spec.to_string(),
                kind: Kind::Admin,
            });
        }
        // Repository globs never contain ':', so the first one separates.
        let (actions, pattern) = spec.split_once(':').ok_or_else(|| {
            invalid("expected ACTIONS:GLOB (e.g. pull,push:team/*) or admin".to_string())
        })?;
        let mut parsed = Vec::new();
        for a in actions.split(',') {
            match a.trim() {
                "*" => parsed.extend(Action::REPOSITORY),
                other => parsed.push(Action::parse(other).ok_or_else(|| {
                    invalid(format!(
                        "unknown action {other:?}; use pull, push, delete or *"
                    ))
                })?),
            }
        }
        parsed.sort();
        parsed.dedup();
        if pattern.is_empty() {
            return Err(invalid(
                "the repository glob is empty; use * for all".to_string(),
            ));
        }
        let glob = GlobBuilder::new(pattern)
            // Explicit although it is globset's default: `*` crosses `/`.
            .literal_separator(false)
            .build()
            .map_err(|e| invalid(e.to_string()))?
            .compile_matcher();
        Ok(Grant {
            spec: spec.to_string(),
            kind: Kind::Repositories {
                actions: parsed,
                glob,
            },
        })
    }

    /// The grant as written.
    pub fn as_str(&self) -> &str {
        &self.spec
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.kind, Kind::Admin)
    }

    /// Whether this grant allows `action` on `repository`.
    pub fn permits(&self, action: Action, repository: &str) -> bool {
        match &self.kind {
            Kind::Admin => true,
            Kind::Repositories { actions, glob } => {
                action != Action::Admin && actions.contains(&action) && glob.is_match(repository)
            }
        }
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec)
    }
}

/// Whether any of `grants` allows `action` on `repository`.
pub fn permits(grants: &[Grant], action: Action, repository: &str) -> bool {
    grants.iter().any(|g| g.permits(action, repository))
}

/// Parse a list of grant strings, failing on the first invalid one.
pub fn parse_grants<S: AsRef<str>>(specs: &[S]) -> Result<Vec<Grant>, AuthError> {
    specs.iter().map(|s| Grant::parse(s.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Result<Grant, AuthError> {
        Grant::parse(s)
    }

    #[test]
    fn star_crosses_slashes() -> Result<(), AuthError> {
        let team = g("pull:team/*")?;
        assert!(team.permits(Action::Pull, "team/app"));
        assert!(team.permits(Action::Pull, "team/app/web"));
        assert!(!team.permits(Action::Pull, "team"));
        assert!(!team.permits(Action::Pull, "other/app"));
        assert!(!team.permits(Action::Push, "team/app"));
        let all = g("*:*")?;
        assert!(all.permits(Action::Delete, "a/b/c"));
        assert!(!all.permits(Action::Admin, "a"), "* is not admin");
        Ok(())
    }

    #[test]
    fn exact_and_alternatives() -> Result<(), AuthError> {
        let x = g("pull,push:library/{busybox,alpine}")?;
        assert!(x.permits(Action::Push, "library/alpine"));
        assert!(!x.permits(Action::Push, "library/alpine2"));
        assert!(!x.permits(Action::Delete, "library/alpine"));
        Ok(())
    }

    #[test]
    fn admin_permits_everything() -> Result<(), AuthError> {
        let a = g("admin")?;
        assert!(a.is_admin());
        assert!(a.permits(Action::Admin, "catalog"));
        assert!(a.permits(Action::Delete, "x/y"));
        Ok(())
    }

    #[test]
    fn refuses_bad_grants() {
        for bad in ["pull", "fetch:*", "pull:", "pull:[", ""] {
            assert!(g(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
