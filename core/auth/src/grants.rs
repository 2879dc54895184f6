//! Grants: what a user may do where, written `ACTIONS:GLOB`, `control:read`,
//! `control:write` or `admin`.
//!
//! `ACTIONS` is a comma-separated subset of `pull,push,delete`, or `*` for
//! all three. `GLOB` matches repository names; `*` matches any run of
//! characters *including* `/`, as Distribution's and Zot's access-control
//! globs do, so `team/*` covers `team/app` and `team/app/web` (but not
//! `team` itself) and `*` covers every repository. `?`, `[...]` and `{a,b}`
//! work as in globset. `admin` grants every action everywhere, including the
//! registry-wide ones (catalog, garbage collection) and every operation of
//! the control API on TCP.
//!
//! Repository grants never reach the control API. `control:read` lets a
//! user do its read-only operations (lists, inspect, logs, stats: the ones
//! the control API classifies as [`Action::Pull`]); `control:write` adds
//! those that change berth's state without handing out the host (start,
//! stop, tag, pull, remove: [`Action::Push`] and [`Action::Delete`]). Only
//! `admin` allows what can give root on the host or change its network (run
//! and create, exec, cp, update, image mount, network create, plugins,
//! users: [`Action::Admin`]).

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
    /// `control:read` (`write: false`) or `control:write`.
    Control {
        write: bool,
    },
    Repositories {
        actions: Vec<Action>,
        glob: GlobMatcher,
    },
}

impl Grant {
    /// Parse `admin`, `control:read`, `control:write` or `ACTIONS:GLOB`.
    pub fn parse(spec: &str) -> Result<Grant, AuthError> {
        let spec = spec.trim();
        let invalid = |reason: String| AuthError::InvalidGrant {
            grant: spec.to_string(),
            reason,
        };
        let fixed = |kind: Kind| {
            Ok(Grant {
                spec: spec.to_string(),
                kind,
            })
        };
        match spec {
            "admin" => return fixed(Kind::Admin),
            "control:read" => return fixed(Kind::Control { write: false }),
            "control:write" => return fixed(Kind::Control { write: true }),
            _ if spec.starts_with("control:") => {
                return Err(invalid(
                    "the control API takes control:read or control:write (or admin for all)"
                        .to_string(),
                ));
            }
            _ => {}
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
                        "unknown action {other:?}; use pull, push, delete or * (or control:read, control:write, admin)"
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
            Kind::Control { .. } => false,
            Kind::Repositories { actions, glob } => {
                action != Action::Admin && actions.contains(&action) && glob.is_match(repository)
            }
        }
    }

    /// Whether this grant allows a control operation of class `action`
    /// (see the module documentation).
    pub fn permits_control(&self, action: Action) -> bool {
        match &self.kind {
            Kind::Admin => true,
            Kind::Control { write } => match action {
                Action::Pull => true,
                Action::Push | Action::Delete => *write,
                Action::Admin => false,
            },
            Kind::Repositories { .. } => false,
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

/// Whether any of `grants` allows a control operation of class `action`.
pub fn permits_control(grants: &[Grant], action: Action) -> bool {
    grants.iter().any(|g| g.permits_control(action))
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
    fn control_grants_are_classes_of_control_operations_only() -> Result<(), AuthError> {
        let read = g("control:read")?;
        assert!(read.permits_control(Action::Pull));
        assert!(!read.permits_control(Action::Push));
        assert!(!read.permits_control(Action::Delete));
        assert!(!read.permits_control(Action::Admin));
        let write = g("control:write")?;
        assert!(write.permits_control(Action::Push));
        assert!(write.permits_control(Action::Delete));
        assert!(!write.permits_control(Action::Admin), "root needs admin");
        assert!(g("admin")?.permits_control(Action::Admin));
        // Neither kind crosses over to the other.
        assert!(!g("*:*")?.permits_control(Action::Pull));
        assert!(!read.permits(Action::Pull, "control"));
        assert!(!write.permits(Action::Pull, "x"));
        Ok(())
    }

    #[test]
    fn refuses_bad_grants() {
        for bad in [
            "pull",
            "fetch:*",
            "pull:",
            "pull:[",
            "",
            "control:admin",
            "control:*",
        ] {
            assert!(g(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
