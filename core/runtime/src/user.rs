//! `--user` resolution against the container's own `/etc/passwd` and
//! `/etc/group`, with Docker's semantics: `name`, `uid`, `name:group`,
//! `uid:gid`; a numeric id need not exist; a name must; supplementary
//! groups are the groups that list the user by name.

use std::path::Path;

use crate::error::RuntimeError;

/// Who the container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// `$HOME` from the passwd entry (`/` when there is none).
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The most of `/etc/passwd` or `/etc/group` read: an image's file is
/// attacker input, and a real one is a few kilobytes.
const MAX_DB: u64 = 16 << 20;

/// Resolve `spec` (`""` means root) against the files under `rootfs`,
/// found inside it (an image's symlink never leads to a host file).
/// Missing passwd or group files, and ones that are not regular files,
/// are treated as empty, as Docker does.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, RuntimeError> {
    resolve_user_in(&berth_fsroot::Root::open(rootfs)?, spec)
}

/// [`resolve_user`] in a root the caller opened, such as a running
/// container's `/proc/PID/root` taken through its checked init
/// (`ContainerInit::root`). A running container can rewrite these files
/// at any time: resolve once, and use the ids resolved.
pub fn resolve_user_in(
    root: &berth_fsroot::Root,
    spec: &str,
) -> Result<ResolvedUser, RuntimeError> {
    let passwd = read_optional(root, "/etc/passwd")?;
    let group = read_optional(root, "/etc/group")?;
    resolve_user_from(&passwd, &group, spec)
}

fn read_optional(root: &berth_fsroot::Root, path: &str) -> Result<String, RuntimeError> {
    let data = root.read_file(path, MAX_DB)?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&data).into_owned())
}

/// [`resolve_user`] on the files' contents.
pub fn resolve_user_from(
    passwd: &str,
    group: &str,
    spec: &str,
) -> Result<ResolvedUser, RuntimeError> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };

    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.uid == uid),
        Err(_) => {
            let found = users.iter().find(|u| u.name == user_part);
            if found.is_none() {
                return Err(RuntimeError::UserNotFound {
                    user: user_part.to_string(),
                });
            }
            found
        }
    };
    let uid = match entry {
        Some(e) => e.uid,
        None => user_part
            .parse::<u32>()
            .map_err(|_| RuntimeError::BadUser {
                spec: spec.to_string(),
                reason: "not a number".into(),
            })?,
    };
    let mut gid = entry.map_or(0, |e| e.gid);
    let home = entry.map_or_else(|| "/".to_string(), |e| e.home.clone());

    match group_part {
        Some("") => {
            return Err(RuntimeError::BadUser {
                spec: spec.to_string(),
                reason: "empty group".into(),
            });
        }
        Some(g) => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => groups
                    .iter()
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| RuntimeError::GroupNotFound {
                        group: g.to_string(),
                    })?,
            };
        }
        None => {}
    }

    // As Docker (moby/sys/user): the supplementary groups are the groups
    // that list the user by name when no group was given, else just the
    // primary group.
    let mut additional_gids = Vec::new();
    if let (Some(e), None) = (entry, group_part) {
        for g in &groups {
            if g.members.contains(&e.name) && !additional_gids.contains(&g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    if additional_gids.is_empty() {
        additional_gids.push(gid);
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f
                    .get(5)
                    .filter(|h| !h.is_empty())
                    .unwrap_or(&"/")
                    .to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n";

    #[test]
    fn default_is_root() {
        let u = resolve_user_from(PASSWD, GROUP, "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn name_gets_gid_and_supplementary_groups() {
        let u = resolve_user_from(PASSWD, GROUP, "app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![10, 29]);
        assert_eq!(u.home, "/home/app");
    }

    #[test]
    fn numeric_uid_known_and_unknown() {
        let u = resolve_user_from(PASSWD, GROUP, "1000").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        let u = resolve_user_from(PASSWD, GROUP, "4242").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        assert_eq!(u.additional_gids, vec![0]);
        let u = resolve_user_from(PASSWD, GROUP, "4242:77").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 77));
    }

    #[test]
    fn group_by_name() {
        let u = resolve_user_from(PASSWD, GROUP, "app:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert_eq!(u.additional_gids, vec![10]);
    }

    #[test]
    fn an_images_links_never_reach_the_hosts_passwd() {
        // A "host" beside the root with a user no image has.
        let dir = tempfile::tempdir().unwrap();
        let (root, host) = (dir.path().join("root"), dir.path().join("host"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("passwd"), "hostonly:x:4242:4242::/:/bin/sh\n").unwrap();
        std::fs::write(host.join("group"), "hostgrp:x:4343:hostonly\n").unwrap();
        let up = format!("{}{}", "../".repeat(30), host.to_string_lossy());
        // /etc itself a link out: absolute, then climbing with `..`.
        for target in [host.to_string_lossy().into_owned(), up.clone()] {
            let _ = std::fs::remove_file(root.join("etc"));
            std::os::unix::fs::symlink(&target, root.join("etc")).unwrap();
            let e = resolve_user(&root, "hostonly").unwrap_err();
            assert!(
                matches!(e, RuntimeError::UserNotFound { .. }),
                "{target}: {e}"
            );
            let e = resolve_user(&root, "0:hostgrp").unwrap_err();
            assert!(
                matches!(e, RuntimeError::GroupNotFound { .. }),
                "{target}: {e}"
            );
            assert_eq!(resolve_user(&root, "4242").unwrap().gid, 0);
        }
        // /etc/passwd a link out; and one that points at itself.
        std::fs::remove_file(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(format!("/{up}/passwd"), root.join("etc/passwd")).unwrap();
        assert!(resolve_user(&root, "hostonly").is_err());
        std::os::unix::fs::symlink("/etc/group", root.join("etc/group")).unwrap();
        let e = resolve_user(&root, "0").unwrap_err();
        assert!(
            e.to_string().contains("too many levels of symbolic links"),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = resolve_user_from(PASSWD, GROUP, "ghost").unwrap_err();
        assert!(e.to_string().contains("unable to find user ghost"), "{e}");
        assert!(matches!(
            resolve_user_from(PASSWD, GROUP, "app:ghosts"),
            Err(RuntimeError::GroupNotFound { .. })
        ));
    }
}
