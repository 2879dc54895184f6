//! Actions, the access a request needs, and Docker's scope strings
//! (`repository:NAME:pull,push`, `registry:catalog:*`).

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The name [`Access::catalog`] uses. Only [`Action::Admin`] makes an
/// access the registry-wide pseudo-resource, so a repository that happens to
/// be called `catalog` is still pulled and pushed as a repository.
pub const CATALOG: &str = "catalog";

/// What a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
    /// Registry-wide operations (catalog, garbage collection). Never scoped to
    /// a repository: whoever holds it holds it everywhere.
    Admin,
}

impl Action {
    /// The repository actions, in the order scopes list them.
    pub const REPOSITORY: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Admin => "admin",
        }
    }

    /// Parse a repository action as scopes and grants spell it.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Access to one resource: a repository, or (with [`Action::Admin`]) the
/// registry itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    pub repository: String,
    pub actions: Vec<Action>,
}

impl Access {
    /// Access to a repository; actions are sorted and deduplicated.
    pub fn repository(name: impl Into<String>, actions: &[Action]) -> Access {
        let mut actions = actions.to_vec();
        actions.sort();
        actions.dedup();
        Access {
            repository: name.into(),
            actions,
        }
    }

    /// The registry catalog (`registry:catalog:*`), which needs admin.
    pub fn catalog() -> Access {
        Access {
            repository: CATALOG.to_string(),
            actions: vec![Action::Admin],
        }
    }

    /// Docker scope strings for this access: one for the repository actions,
    /// one `registry:catalog:*` if admin is asked for.
    pub fn scopes(&self) -> Vec<String> {
        let mut repo: Vec<Action> = self
            .actions
            .iter()
            .copied()
            .filter(|a| *a != Action::Admin)
            .collect();
        repo.sort();
        repo.dedup();
        let mut out = Vec::new();
        if !repo.is_empty() {
            let actions: Vec<&str> = repo.iter().map(|a| a.as_str()).collect();
            out.push(format!(
                "repository:{}:{}",
                self.repository,
                actions.join(",")
            ));
        }
        if self.actions.contains(&Action::Admin) {
            out.push(format!("registry:{CATALOG}:*"));
        }
        out
    }
}

/// Parse one Docker scope. Returns `Ok(None)` for resource types and names
/// berth has no use for (Docker's `repository(plugin)`, other registry
/// resources), which token servers ignore rather than refuse.
///
/// The name sits between the first and the last `:`: repository names may
/// contain `/` but never `:` (a `host:port` prefix is not part of them).
/// Unknown actions are dropped; `*` on a repository means pull, push, delete.
pub fn parse_scope(scope: &str) -> Result<Option<Access>, AuthError> {
    let invalid = |reason: &str| AuthError::InvalidScope {
        scope: scope.to_string(),
        reason: reason.to_string(),
    };
    let (kind, rest) = scope
        .split_once(':')
        .ok_or_else(|| invalid("expected TYPE:NAME:ACTIONS"))?;
    let (name, actions) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected TYPE:NAME:ACTIONS"))?;
    match kind {
        "repository" => {
            berth_oci::validate_repository(name).map_err(|e| invalid(&e.to_string()))?;
            let mut parsed = Vec::new();
            for a in actions.split(',') {
                if a == "*" {
                    parsed.extend(Action::REPOSITORY);
                } else if let Some(a) = Action::parse(a) {
                    parsed.push(a);
                }
            }
            Ok(Some(Access::repository(name, &parsed)))
        }
        "registry" if name == CATALOG && actions.split(',').any(|a| a == "*") => {
            Ok(Some(Access::catalog()))
        }
        _ => Ok(None),
    }
}

/// Parse several scopes, each of which may itself hold space-separated
/// scopes (as OAuth2's `scope` form field and some clients do).
pub fn parse_scopes<S: AsRef<str>>(scopes: &[S]) -> Result<Vec<Access>, AuthError> {
    let mut out = Vec::new();
    for s in scopes {
        for one in s.as_ref().split_whitespace() {
            if let Some(a) = parse_scope(one)? {
                out.push(a);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repository_scope_with_slashes() -> Result<(), AuthError> {
        let a = parse_scope("repository:team/app/web:push,pull")?;
        assert_eq!(
            a,
            Some(Access::repository(
                "team/app/web",
                &[Action::Pull, Action::Push]
            ))
        );
        Ok(())
    }

    #[test]
    fn star_means_all_repository_actions_and_unknown_are_dropped() -> Result<(), AuthError> {
        let a = parse_scope("repository:a:*")
            .ok()
            .flatten()
            .map(|a| a.actions);
        assert_eq!(a, Some(Action::REPOSITORY.to_vec()));
        let b = parse_scope("repository:a:pull,metadata-read")?.map(|a| a.actions);
        assert_eq!(b, Some(vec![Action::Pull]));
        Ok(())
    }

    #[test]
    fn catalog_and_ignored_scopes() -> Result<(), AuthError> {
        assert_eq!(parse_scope("registry:catalog:*")?, Some(Access::catalog()));
        assert_eq!(parse_scope("repository(plugin):x:pull")?, None);
        assert!(parse_scope("repository:UPPER:pull").is_err());
        assert!(parse_scope("repository-only").is_err());
        Ok(())
    }

    #[test]
    fn formats_scopes_in_canonical_order() {
        let a = Access::repository("lib/x", &[Action::Push, Action::Pull, Action::Push]);
        assert_eq!(a.scopes(), vec!["repository:lib/x:pull,push".to_string()]);
        assert_eq!(Access::catalog().scopes(), vec!["registry:catalog:*"]);
    }

    #[test]
    fn space_separated_scopes() -> Result<(), AuthError> {
        let v = parse_scopes(&["repository:a:pull repository:b:push", "registry:catalog:*"])?;
        assert_eq!(v.len(), 3);
        Ok(())
    }
}
