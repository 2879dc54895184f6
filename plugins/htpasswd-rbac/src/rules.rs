//! Who may do what: the `rules`, `anonymous` and `groups` configuration, and `authorize`.
//!
//! A rule's `repositories` answer for targets of kind `repository` (and the registry-wide
//! `admin` operations such as `catalog`); its `control` patterns answer for kind `control`,
//! the control API on TCP, matched against the operation (`GET /v1/containers/{id}`), where
//! the action is the operation's class: `pull` reads, `push` changes berth's state, `delete`
//! removes, `admin` can give root on the host and implies the other three. A repository rule
//! never opens the control API, except one that grants `admin` (as configurations written
//! before `control` rules did): its patterns are matched against the operation's path.

use std::collections::BTreeMap;

use berth_plugin_sdk::prelude::*;

/// The configuration table as the operator writes it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Guest path of the bcrypt htpasswd file.
    pub htpasswd: String,
    /// Group name → member user names.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Grants for authenticated users.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Grants for anonymous clients.
    #[serde(default)]
    pub anonymous: Vec<RawAnonymousRule>,
}

/// `{ users = [...], groups = [...], repositories = "team/*", actions = ["pull"] }`, or with
/// `control = "*"` (or both).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub repositories: Option<Patterns>,
    /// Control API operations, `METHOD /v1/route/{param}` globs.
    #[serde(default)]
    pub control: Option<Patterns>,
    pub actions: Vec<String>,
}

/// `{ repositories = "public/*", actions = ["pull"] }`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnonymousRule {
    pub repositories: Patterns,
    pub actions: Vec<String>,
}

/// One glob or a list of them.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum Patterns {
    One(String),
    Many(Vec<String>),
}

impl Patterns {
    fn into_vec(self) -> Vec<String> {
        match self {
            Patterns::One(pattern) => vec![pattern],
            Patterns::Many(patterns) => patterns,
        }
    }
}

/// A validated grant.
#[derive(Debug)]
struct Rule {
    /// User names (globs); empty with `groups` empty means "no user" (anonymous rules).
    users: Vec<String>,
    groups: Vec<String>,
    repositories: Vec<String>,
    control: Vec<String>,
    actions: Vec<Action>,
}

impl Rule {
    fn grants(&self, action: Action, what: &Target) -> bool {
        match what.kind.as_str() {
            "repository" => {
                self.actions.contains(&action) && matches_any(&self.repositories, &what.name)
            }
            "control" => {
                let admin = self.actions.contains(&Action::Admin);
                let by_control = (admin || self.actions.contains(&action))
                    && matches_any(&self.control, &what.name);
                // `GET /v1/x` -> `/v1/x`, for admin rules written before `control`.
                let path = what
                    .name
                    .split_once(' ')
                    .map_or(what.name.as_str(), |(_, path)| path);
                by_control || (admin && matches_any(&self.repositories, path))
            }
            // A kind this plugin does not know is never granted.
            _ => false,
        }
    }
}

/// The validated policy.
#[derive(Debug)]
pub struct Policy {
    groups: BTreeMap<String, Vec<String>>,
    rules: Vec<Rule>,
    anonymous: Vec<Rule>,
}

fn actions(list: Vec<String>, which: &str) -> Result<Vec<Action>, String> {
    list.iter()
        .map(|name| {
            Action::parse(name).ok_or_else(|| {
                format!("{which}: unknown action {name:?}; use pull, push, delete or admin")
            })
        })
        .collect()
}

impl Policy {
    /// Validates the rules of `config`.
    pub fn new(config: Config) -> Result<Policy, String> {
        let mut rules = Vec::new();
        for (i, raw) in config.rules.into_iter().enumerate() {
            let which = format!("rules[{i}]");
            if raw.repositories.is_none() && raw.control.is_none() {
                return Err(format!(
                    "{which}: names no `repositories` and no `control` operations; add one"
                ));
            }
            if raw.users.is_empty() && raw.groups.is_empty() {
                return Err(format!(
                    "{which}: names no users and no groups; add `users = [...]` or `groups = [...]` \
                     (anonymous access goes in `anonymous`)"
                ));
            }
            for group in &raw.groups {
                if !config.groups.contains_key(group) {
                    return Err(format!(
                        "{which}: group {group:?} is not defined in `groups`"
                    ));
                }
            }
            rules.push(Rule {
                users: raw.users,
                groups: raw.groups,
                repositories: raw.repositories.map(Patterns::into_vec).unwrap_or_default(),
                control: raw.control.map(Patterns::into_vec).unwrap_or_default(),
                actions: actions(raw.actions, &which)?,
            });
        }
        let mut anonymous = Vec::new();
        for (i, raw) in config.anonymous.into_iter().enumerate() {
            anonymous.push(Rule {
                users: Vec::new(),
                groups: Vec::new(),
                repositories: raw.repositories.into_vec(),
                // The control API always wants credentials.
                control: Vec::new(),
                actions: actions(raw.actions, &format!("anonymous[{i}]"))?,
            });
        }
        Ok(Policy {
            groups: config.groups,
            rules,
            anonymous,
        })
    }

    /// The groups `user` belongs to, sorted.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m == user))
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// Whether `who` may do `action` on `what`.
    pub fn authorize(&self, who: &Principal, action: Action, what: &Target) -> Decision {
        let grants = |rule: &Rule| rule.grants(action, what);
        let allowed = if who.anonymous {
            self.anonymous.iter().any(grants)
        } else {
            self.rules
                .iter()
                .filter(|rule| applies(rule, who))
                .any(grants)
        };
        if allowed {
            return Decision::Allow;
        }
        let subject = if who.anonymous {
            "anonymous clients".to_owned()
        } else {
            format!("user {:?}", who.name)
        };
        let how = if who.anonymous {
            "log in, or ask the operator for an `anonymous` rule"
        } else {
            "ask the operator for a rule granting it"
        };
        Decision::Deny(format!(
            "{subject} may not {action} {kind} {name:?}: no htpasswd-rbac rule grants it; {how}",
            kind = what.kind,
            name = what.name,
        ))
    }
}

fn applies(rule: &Rule, who: &Principal) -> bool {
    matches_any(&rule.users, &who.name) || rule.groups.iter().any(|g| who.groups.contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::new(berth_plugin_sdk::parse_config(json).unwrap()).unwrap()
    }

    fn repo(name: &str) -> Target {
        Target {
            kind: "repository".into(),
            name: name.into(),
        }
    }

    const CONFIG: &str = r#"{
        "htpasswd": "/auth/htpasswd",
        "groups": { "admins": ["root-user"], "team": ["bob", "carol"] },
        "rules": [
            { "users": ["alice"], "repositories": "alice/*", "actions": ["pull", "push", "delete"] },
            { "groups": ["team"], "repositories": ["team/*", "shared"], "actions": ["pull", "push"] },
            { "groups": ["admins"], "repositories": "*", "actions": ["pull", "push", "delete", "admin"] }
        ],
        "anonymous": [ { "repositories": "public/*", "actions": ["pull"] } ]
    }"#;

    fn allowed(decision: Decision) -> bool {
        match decision {
            Decision::Allow => true,
            Decision::Deny(_) => false,
            Decision::Abstain => panic!("htpasswd-rbac never abstains on authorize"),
        }
    }

    #[test]
    fn users_get_what_their_rules_grant() {
        let p = policy(CONFIG);
        let alice = Principal::user("alice", p.groups_of("alice"));
        assert!(allowed(p.authorize(
            &alice,
            Action::Push,
            &repo("alice/app")
        )));
        assert!(allowed(p.authorize(
            &alice,
            Action::Delete,
            &repo("alice/a/b")
        )));
        assert!(!allowed(p.authorize(
            &alice,
            Action::Admin,
            &repo("alice/app")
        )));
        assert!(!allowed(p.authorize(
            &alice,
            Action::Pull,
            &repo("team/app")
        )));
    }

    #[test]
    fn groups_come_from_the_config() {
        let p = policy(CONFIG);
        assert_eq!(p.groups_of("bob"), vec!["team"]);
        assert!(p.groups_of("alice").is_empty());
        let bob = Principal::user("bob", p.groups_of("bob"));
        assert!(allowed(p.authorize(&bob, Action::Push, &repo("team/x"))));
        assert!(allowed(p.authorize(&bob, Action::Pull, &repo("shared"))));
        assert!(!allowed(p.authorize(&bob, Action::Delete, &repo("team/x"))));
        let admin = Principal::user("root-user", p.groups_of("root-user"));
        let catalog = Target {
            kind: "repository".into(),
            name: "catalog".into(),
        };
        assert!(allowed(p.authorize(&admin, Action::Admin, &catalog)));
    }

    #[test]
    fn anonymous_gets_only_anonymous_rules() {
        let p = policy(CONFIG);
        let anon = Principal::anonymous();
        assert!(allowed(p.authorize(
            &anon,
            Action::Pull,
            &repo("public/busybox")
        )));
        assert!(!allowed(p.authorize(
            &anon,
            Action::Push,
            &repo("public/busybox")
        )));
        assert!(!allowed(p.authorize(
            &anon,
            Action::Pull,
            &repo("alice/app")
        )));
    }

    #[test]
    fn a_denial_says_who_what_and_how_to_fix() {
        let p = policy(CONFIG);
        let carol = Principal::user("carol", p.groups_of("carol"));
        let Decision::Deny(reason) = p.authorize(&carol, Action::Delete, &repo("team/x")) else {
            panic!("allowed");
        };
        assert!(
            reason.contains("\"carol\"") && reason.contains("delete"),
            "{reason}"
        );
        assert!(reason.contains("\"team/x\""), "{reason}");
        let Decision::Deny(reason) =
            p.authorize(&Principal::anonymous(), Action::Push, &repo("public/x"))
        else {
            panic!("allowed");
        };
        assert!(reason.contains("log in"), "{reason}");
    }

    fn control(name: &str) -> Target {
        Target {
            kind: "control".into(),
            name: name.into(),
        }
    }

    #[test]
    fn control_rules_answer_for_control_operations_only() {
        let p = policy(
            r#"{
            "htpasswd": "/a",
            "rules": [
                { "users": ["viewer"], "control": "*", "actions": ["pull"] },
                { "users": ["operator"], "control": "* /v1/containers*", "actions": ["pull", "push"] },
                { "users": ["root"], "control": "*", "actions": ["admin"] },
                { "users": ["old-admin"], "repositories": "/v1/*", "actions": ["admin"] },
                { "users": ["puller"], "repositories": "*", "actions": ["pull", "push"] }
            ]
        }"#,
        );
        let who = |name: &str| Principal::user(name, Vec::new());
        let list = control("GET /v1/containers");
        let run = control("POST /v1/containers");
        let stop = control("POST /v1/containers/{id}/stop");
        assert!(allowed(p.authorize(&who("viewer"), Action::Pull, &list)));
        assert!(!allowed(p.authorize(&who("viewer"), Action::Admin, &run)));
        assert!(!allowed(p.authorize(&who("viewer"), Action::Push, &stop)));
        assert!(
            !allowed(p.authorize(&who("viewer"), Action::Pull, &repo("team/app"))),
            "a control rule opens no repository"
        );
        assert!(allowed(p.authorize(&who("operator"), Action::Push, &stop)));
        assert!(!allowed(p.authorize(&who("operator"), Action::Admin, &run)));
        assert!(!allowed(p.authorize(
            &who("operator"),
            Action::Pull,
            &control("GET /v1/images")
        )));
        for (action, target) in [
            (Action::Pull, &list),
            (Action::Push, &stop),
            (Action::Admin, &run),
        ] {
            assert!(allowed(p.authorize(&who("root"), action, target)));
            assert!(allowed(p.authorize(&who("old-admin"), action, target)));
        }
        // Repository rights, even on `*`, never reach the control API.
        assert!(!allowed(p.authorize(&who("puller"), Action::Pull, &list)));
        assert!(!allowed(p.authorize(&who("puller"), Action::Push, &stop)));
        let unknown = Target {
            kind: "cluster".into(),
            name: "x".into(),
        };
        assert!(!allowed(p.authorize(&who("root"), Action::Admin, &unknown)));
    }

    #[test]
    fn bad_rules_are_configuration_errors() {
        let unknown_action =
            r#"{"htpasswd":"/a","rules":[{"users":["a"],"repositories":"*","actions":["write"]}]}"#;
        let err = Policy::new(berth_plugin_sdk::parse_config(unknown_action).unwrap()).unwrap_err();
        assert!(
            err.contains("rules[0]") && err.contains("\"write\""),
            "{err}"
        );
        let nothing = r#"{"htpasswd":"/a","rules":[{"users":["a"],"actions":["pull"]}]}"#;
        let err = Policy::new(berth_plugin_sdk::parse_config(nothing).unwrap()).unwrap_err();
        assert!(err.contains("no `repositories`"), "{err}");
        let nobody = r#"{"htpasswd":"/a","rules":[{"repositories":"*","actions":["pull"]}]}"#;
        let err = Policy::new(berth_plugin_sdk::parse_config(nobody).unwrap()).unwrap_err();
        assert!(err.contains("no users"), "{err}");
        let undefined_group = r#"{"htpasswd":"/a","rules":[{"groups":["ops"],"repositories":"*","actions":["pull"]}]}"#;
        let err =
            Policy::new(berth_plugin_sdk::parse_config(undefined_group).unwrap()).unwrap_err();
        assert!(err.contains("\"ops\""), "{err}");
        let missing_file = berth_plugin_sdk::parse_config::<Config>("{}").unwrap_err();
        assert!(
            missing_file.to_string().contains("htpasswd"),
            "{missing_file}"
        );
    }
}
