//! Which cgroup hierarchies this host has, found at run time from
//! `/proc/self/mountinfo` and the contents of `/sys/fs/cgroup`, and the
//! one override of that finding, [`LAYOUT_ENV`], with which tests drive the
//! pure cgroup v2 path on a hybrid host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};

/// The v1 controllers berth places containers in.
pub const V1_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio", "devices",
];

/// The environment variable that overrides the detected layout. Its one
/// value, `v2`, makes berth drive the v2 hierarchy alone, as on a pure
/// cgroup v2 host: on the hybrid layout that is the controller-less
/// unified mount, so containers get no v1 controller at all (device rules
/// then rest on the BPF device program alone). It is meant for tests of
/// the v2 path on hosts that are not pure v2; it is honoured only where a
/// cgroup2 mount exists. Every process that manages a container's cgroup
/// (berthd and its shims) must see the same value, which the shims do by
/// inheriting the daemon's environment.
pub const LAYOUT_ENV: &str = "BERTH_CGROUP_LAYOUT";

/// How cgroups are mounted on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup v2, with its controllers, at `root`.
    Unified {
        /// Mount point (or a delegated sub-directory) of the v2 hierarchy.
        root: PathBuf,
    },
    /// Only cgroup v1: each controller's hierarchy root.
    Legacy {
        /// Controller name (`memory`, `cpu`, ...) to its hierarchy root.
        controllers: BTreeMap<String, PathBuf>,
    },
    /// v1 controllers plus a v2 hierarchy without controllers (systemd's
    /// "hybrid" mode). Resources are v1; the v2 hierarchy is used, as
    /// systemd does, to track processes, and for `cgroup.kill`.
    Hybrid {
        /// Controller name to its v1 hierarchy root.
        controllers: BTreeMap<String, PathBuf>,
        /// Mount point of the controller-less v2 hierarchy.
        unified: PathBuf,
    },
}

impl Layout {
    /// Detect the layout of this host, as [`LAYOUT_ENV`] may override it.
    pub fn detect() -> Result<Layout> {
        let mountinfo = read("/proc/self/mountinfo")?;
        let v2_controllers = |root: &Path| {
            std::fs::read_to_string(root.join("cgroup.controllers"))
                .map(|c| !c.trim().is_empty())
                .unwrap_or(false)
        };
        let layout = Self::from_mountinfo(&mountinfo, v2_controllers)?;
        let forced = std::env::var_os(LAYOUT_ENV);
        let forced = match &forced {
            None => None,
            Some(value) => Some(value.to_str().ok_or_else(|| CgroupError::Layout {
                reason: format!("{LAYOUT_ENV} is not UTF-8; unset it or set it to v2"),
            })?),
        };
        let layout = layout.overridden(forced)?;
        tracing::debug!(?layout, "detected cgroup layout");
        Ok(layout)
    }

    /// The layout as [`LAYOUT_ENV`] set to `value` asks: unset or empty
    /// keeps it; `v2` keeps only the v2 hierarchy.
    pub fn overridden(self, value: Option<&str>) -> Result<Layout> {
        match (value.unwrap_or("").trim(), self) {
            ("", layout) => Ok(layout),
            ("v2", Layout::Unified { root }) => Ok(Layout::Unified { root }),
            ("v2", Layout::Hybrid { unified, .. }) => Ok(Layout::Unified { root: unified }),
            ("v2", Layout::Legacy { .. }) => Err(CgroupError::Layout {
                reason: format!(
                    "{LAYOUT_ENV}=v2 asks for the cgroup v2 hierarchy, but this host has no \
                     cgroup2 mount; mount one or unset {LAYOUT_ENV}"
                ),
            }),
            (other, _) => Err(CgroupError::Layout {
                reason: format!(
                    "{LAYOUT_ENV}={other:?} is not understood; unset it or set it to v2"
                ),
            }),
        }
    }

    /// Decide the layout from the text of a `mountinfo` file.
    /// `has_controllers` tells whether a cgroup2 mount point has any
    /// controllers available (its `cgroup.controllers` is non-empty).
    pub fn from_mountinfo(
        mountinfo: &str,
        has_controllers: impl Fn(&Path) -> bool,
    ) -> Result<Layout> {
        let mut controllers = BTreeMap::new();
        let mut v2_mounts = Vec::new();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = match pre.split_whitespace().nth(4) {
                Some(m) => berth_mountinfo::unescape(m),
                None => continue,
            };
            let mut post = post.split_whitespace();
            let (fstype, _source, options) = (post.next(), post.next(), post.next());
            match fstype {
                Some("cgroup2") => v2_mounts.push(mount_point),
                Some("cgroup") => {
                    for option in options.unwrap_or_default().split(',') {
                        if V1_CONTROLLERS.contains(&option) {
                            // The first mount wins, as the kernel allows a
                            // hierarchy to be mounted at several places.
                            controllers
                                .entry(option.to_owned())
                                .or_insert_with(|| mount_point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        if controllers.is_empty() {
            return match v2_mounts.into_iter().next() {
                Some(root) => Ok(Layout::Unified { root }),
                None => Err(CgroupError::Layout {
                    reason: "no cgroup or cgroup2 mount in /proc/self/mountinfo; \
                             mount cgroup2 at /sys/fs/cgroup"
                        .to_owned(),
                }),
            };
        }
        // A v2 mount with controllers next to v1 ones would mean
        // controllers split between versions, which berth does not drive;
        // resources then stay on v1 and v2 is used only for tracking.
        let unified = v2_mounts
            .iter()
            .find(|m| !has_controllers(m))
            .or(v2_mounts.first())
            .cloned();
        Ok(match unified {
            Some(unified) => Layout::Hybrid {
                controllers,
                unified,
            },
            None => Layout::Legacy { controllers },
        })
    }

    /// The same layout with every hierarchy root moved to the cgroup this
    /// process is in, so that containers nest below it (as under a
    /// delegated systemd unit, or in tests that must stay inside their own
    /// accounting).
    pub fn nested_in_own_cgroups(&self) -> Result<Layout> {
        let own = read("/proc/self/cgroup")?;
        self.nested_in(&own)
    }

    /// [`Layout::nested_in_own_cgroups`] from the text of a
    /// `/proc/<pid>/cgroup` file.
    pub fn nested_in(&self, proc_cgroup: &str) -> Result<Layout> {
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, names, path) = (parts.next(), parts.next(), parts.next());
            let (Some(names), Some(path)) = (names, path) else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if names.is_empty() {
                v2 = Some(rel.to_owned());
            }
            for name in names.split(',') {
                v1.insert(name.to_owned(), rel.to_owned());
            }
        }
        let missing = |what: &str| CgroupError::Layout {
            reason: format!("/proc/self/cgroup has no entry for {what}"),
        };
        let nest = |controllers: &BTreeMap<String, PathBuf>| -> Result<_> {
            controllers
                .iter()
                .map(|(name, root)| {
                    let rel = v1.get(name).ok_or_else(|| missing(name))?;
                    Ok((name.clone(), join(root, rel)))
                })
                .collect::<Result<BTreeMap<_, _>>>()
        };
        let v2_rel = || v2.clone().ok_or_else(|| missing("the unified hierarchy"));
        Ok(match self {
            Layout::Unified { root } => Layout::Unified {
                root: join(root, &v2_rel()?),
            },
            Layout::Legacy { controllers } => Layout::Legacy {
                controllers: nest(controllers)?,
            },
            Layout::Hybrid {
                controllers,
                unified,
            } => Layout::Hybrid {
                controllers: nest(controllers)?,
                unified: join(unified, &v2_rel()?),
            },
        })
    }
}

/// `root` joined with `rel`, without a trailing `/` when `rel` is empty.
fn join(root: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_is_v1_controllers_plus_empty_unified() {
        let layout = Layout::from_mountinfo(HYBRID, |_| false).unwrap();
        let Layout::Hybrid {
            controllers,
            unified,
        } = layout
        else {
            panic!("not hybrid: {layout:?}");
        };
        assert_eq!(unified, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(controllers["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(controllers["cpuacct"], Path::new("/sys/fs/cgroup/cpuacct"));
        assert!(!controllers.contains_key("name=systemd"));
    }

    #[test]
    fn unified_and_legacy() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            Layout::from_mountinfo(v2, |_| true).unwrap(),
            Layout::Unified {
                root: "/sys/fs/cgroup".into()
            }
        );
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let Layout::Legacy { controllers } = Layout::from_mountinfo(v1, |_| true).unwrap() else {
            panic!("not legacy");
        };
        assert_eq!(controllers["cpu"], controllers["cpuacct"]);
        assert!(Layout::from_mountinfo("", |_| true).is_err());
    }

    #[test]
    fn nesting_follows_proc_self_cgroup() {
        let layout = Layout::from_mountinfo(HYBRID, |_| false).unwrap();
        let own = "9:name=systemd:/\n4:memory:/job/7\n1:cpu:/\n2:cpuacct:/\n8:pids:/\n0::/u\n";
        let Layout::Hybrid {
            controllers,
            unified,
        } = layout.nested_in(own).unwrap()
        else {
            panic!("not hybrid");
        };
        assert_eq!(
            controllers["memory"],
            Path::new("/sys/fs/cgroup/memory/job/7")
        );
        assert_eq!(controllers["cpu"], Path::new("/sys/fs/cgroup/cpu/"));
        assert_eq!(unified, Path::new("/sys/fs/cgroup/unified/u"));
    }

    #[test]
    fn the_override_keeps_v2_alone_where_there_is_one() {
        let hybrid = Layout::from_mountinfo(HYBRID, |_| false).unwrap();
        assert_eq!(hybrid.clone().overridden(None).unwrap(), hybrid);
        assert_eq!(hybrid.clone().overridden(Some("")).unwrap(), hybrid);
        assert_eq!(
            hybrid.clone().overridden(Some("v2")).unwrap(),
            Layout::Unified {
                root: "/sys/fs/cgroup/unified".into()
            }
        );
        let unified = Layout::Unified {
            root: "/sys/fs/cgroup".into(),
        };
        assert_eq!(unified.clone().overridden(Some("v2")).unwrap(), unified);
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        let legacy = Layout::from_mountinfo(v1, |_| true).unwrap();
        let err = legacy.overridden(Some("v2")).unwrap_err().to_string();
        assert!(err.contains("no cgroup2 mount"), "{err}");
        let err = hybrid.overridden(Some("v3")).unwrap_err().to_string();
        assert!(err.contains("\"v3\" is not understood"), "{err}");
    }
}
