//! A runtime spec compiled, in the parent, into everything the child
//! needs as ready C strings and numbers: between `clone` and `execve` the
//! child must not allocate (another thread of ours may have held the
//! allocator's lock at the moment of the clone).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::RuntimeError;

/// What a mount target must be created as, if it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    Dir,
    File,
}

/// One operation on the container's root before `pivot_root`. Every path
/// is inside the rootfs (relative, as [`berth_fsroot::relative`] gives
/// it): the child opens it with `openat2(RESOLVE_IN_ROOT)` from a
/// descriptor of the rootfs and works on the descriptor, so neither an
/// image's link nor a change made after this plan leads out of the root.
#[derive(Debug)]
pub(crate) enum Step {
    Mount {
        /// A host path (a bind's source) or a file system's name.
        source: Option<CString>,
        target: CString,
        /// `target`'s directory and last component, to make it in the
        /// child when it is in a file system mounted just now (`/dev/pts`).
        parent: CString,
        name: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        create: Create,
        /// A bind mount is made read-only by a second, remount call.
        remount_flags: Option<libc::c_ulong>,
    },
    Mknod {
        dir: CString,
        name: CString,
        /// `S_IFCHR` or `S_IFBLK` and the permissions.
        mode: libc::mode_t,
        major: u32,
        minor: u32,
    },
    Symlink {
        target: CString,
        dir: CString,
        name: CString,
    },
    /// runc's masked path: /dev/null over a file, an empty read-only tmpfs over a directory.
    Mask { path: CString },
    /// Bind a path onto itself and remount it read-only.
    ReadOnly { path: CString },
}

/// Everything the child does, prepared.
pub(crate) struct Plan {
    pub clone_flags: libc::c_long,
    /// `process.terminal`: the init gets a pty of the container's devpts.
    pub terminal: bool,
    pub cgroup_ns: bool,
    pub rootfs: CString,
    pub steps: Vec<Step>,
    /// What each step is, for error messages.
    pub labels: Vec<String>,
    pub readonly_root: bool,
    pub hostname: Option<CString>,
    pub rlimits: Vec<(libc::c_int, libc::rlimit)>,
    pub no_new_privs: bool,
    pub seccomp: Vec<seccompiler::BpfProgram>,
    pub last_cap: u8,
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
    pub cwd: CString,
    pub command: String,
    /// Paths to try in order (PATH lookup done here, in the parent).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
}

const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEV_LINKS: &[(&str, &str)] = &[
    ("pts/ptmx", "ptmx"),
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

fn cstr(s: impl AsRef<[u8]>) -> Result<CString, RuntimeError> {
    CString::new(s.as_ref()).map_err(|_| RuntimeError::BadSpec {
        reason: "a string contains a NUL byte".into(),
    })
}

fn cpath(p: &Path) -> Result<CString, RuntimeError> {
    cstr(p.as_os_str().as_bytes())
}

/// `path` inside the rootfs, as the child opens it from the rootfs's descriptor.
fn in_root(path: &Path) -> Result<CString, RuntimeError> {
    cstr(berth_fsroot::relative(path))
}

/// `path`'s directory (inside the rootfs) and last component.
fn parent_and_name(path: &Path) -> Result<(CString, CString), RuntimeError> {
    let (parent, name) =
        berth_fsroot::parent_and_name(path).ok_or_else(|| RuntimeError::BadMount {
            destination: path.display().to_string(),
            reason: "the destination must name a file or directory other than /".into(),
        })?;
    Ok((cstr(parent)?, cstr(name)?))
}

/// Mount options to (flags, data, read-only-remount needed).
fn parse_options(options: &[String], bind: bool) -> (libc::c_ulong, String, bool) {
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    let mut ro = false;
    for o in options {
        match o.as_str() {
            "ro" => ro = true,
            "rw" => ro = false,
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "bind" => flags |= libc::MS_BIND,
            "rbind" => flags |= libc::MS_BIND | libc::MS_REC,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "noatime" => flags |= libc::MS_NOATIME,
            // The whole tree is made private first; propagation options need nothing more.
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {}
            other => data.push(other.to_string()),
        }
    }
    if ro && !bind {
        flags |= libc::MS_RDONLY;
    }
    (flags, data.join(","), ro && bind)
}

impl Plan {
    /// Compile `spec`. Creates the mount targets and the working directory
    /// that live in the image's tree, inside the rootfs (an image's links
    /// are followed only inside it; a chain past 40 links is an error).
    pub(crate) fn from_spec(spec: &Spec) -> Result<Plan, RuntimeError> {
        let bad = |reason: &str| RuntimeError::BadSpec {
            reason: reason.to_string(),
        };
        let root = spec.root().as_ref().ok_or_else(|| bad("no root"))?;
        let rootfs = root.path().clone();
        if !rootfs.is_absolute() {
            return Err(bad("root.path must be absolute"));
        }
        let tree = berth_fsroot::Root::open(&rootfs)?;
        let process = spec.process().as_ref().ok_or_else(|| bad("no process"))?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| bad("no linux section"))?;

        let mut clone_flags: libc::c_long = 0;
        let mut cgroup_ns = false;
        for ns in linux.namespaces().iter().flatten() {
            if ns.path().is_some() {
                return Err(bad(
                    "joining an existing namespace (namespace path) is not supported yet",
                ));
            }
            clone_flags |= match ns.typ() {
                LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
                LinuxNamespaceType::Network => libc::CLONE_NEWNET,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
                LinuxNamespaceType::Cgroup => {
                    // Unshared after start, once the caller has placed the
                    // process in its cgroup, so that cgroup is the ns root.
                    cgroup_ns = true;
                    0
                }
                other => return Err(bad(&format!("namespace {other:?} is not supported yet"))),
            } as libc::c_long;
        }
        if clone_flags & libc::CLONE_NEWNS as libc::c_long == 0 {
            return Err(bad("a mount namespace is required"));
        }

        let mut steps = Vec::new();
        let mut labels = Vec::new();
        // Destinations of file systems we mount fresh: paths under them are ours, not the image's.
        let mut fresh: Vec<PathBuf> = Vec::new();
        for m in spec.mounts().iter().flatten() {
            let dest = m.destination();
            let typ = m.typ().clone().unwrap_or_default();
            let options = m.options().clone().unwrap_or_default();
            let bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
            let (mut flags, data, remount_ro) = parse_options(&options, bind);
            if bind {
                flags |= libc::MS_BIND;
            }
            let source = m.source().clone();
            let create = match &source {
                Some(s) if bind && !s.is_dir() => Create::File,
                _ => Create::Dir,
            };
            // Paths under a file system mounted fresh are ours, not the
            // image's: the child makes those (after mounting it).
            if !fresh.iter().any(|f| dest.starts_with(f)) {
                match create {
                    Create::Dir => tree.mkdir_all(dest, 0o755).map(drop)?,
                    Create::File => tree.create_file(dest, 0o644)?,
                }
            }
            if !bind {
                fresh.push(dest.clone());
            }
            let (parent, name) = parent_and_name(dest)?;
            labels.push(format!(" of {typ} on {}", dest.display()));
            steps.push(Step::Mount {
                source: source.as_deref().map(cpath).transpose()?,
                target: in_root(dest)?,
                parent,
                name,
                fstype: if bind { None } else { Some(cstr(&typ)?) },
                flags,
                data: if data.is_empty() {
                    None
                } else {
                    Some(cstr(&data)?)
                },
                create,
                remount_flags: remount_ro.then_some(
                    libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | (flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)),
                ),
            });
            if dest == Path::new("/dev") && typ == "tmpfs" {
                for (name, major, minor) in DEVICES {
                    labels.push(format!(" of /dev/{name}"));
                    steps.push(Step::Mknod {
                        dir: cstr("dev")?,
                        name: cstr(name)?,
                        mode: libc::S_IFCHR | 0o666,
                        major: *major,
                        minor: *minor,
                    });
                }
                for (target, link) in DEV_LINKS {
                    labels.push(format!(" of /dev/{link}"));
                    steps.push(Step::Symlink {
                        target: cstr(target)?,
                        dir: cstr("dev")?,
                        name: cstr(link)?,
                    });
                }
                for d in linux.devices().iter().flatten() {
                    labels.push(format!(" of {}", d.path().display()));
                    steps.push(device_node(d)?);
                }
            }
        }
        for p in linux.masked_paths().iter().flatten() {
            labels.push(format!(" masking {p}"));
            steps.push(Step::Mask {
                path: in_root(Path::new(p))?,
            });
        }
        for p in linux.readonly_paths().iter().flatten() {
            labels.push(format!(" making {p} read-only"));
            steps.push(Step::ReadOnly {
                path: in_root(Path::new(p))?,
            });
        }

        let rlimits = rlimits_of(process)?;

        let caps = process.capabilities().as_ref();
        let user = process.user();
        let cwd = process.cwd().clone();
        // Docker creates a missing working directory.
        tree.mkdir_all(&cwd, 0o755)?;
        let args = process.args().clone().unwrap_or_default();
        let first = args.first().ok_or(RuntimeError::NoCommand)?.clone();
        let env = process.env().clone().unwrap_or_default();
        let candidates = candidates(&first, &env)?;
        let seccomp = match linux.seccomp() {
            Some(profile) => crate::seccomp::compile(profile)?,
            None => Vec::new(),
        };

        Ok(Plan {
            clone_flags,
            terminal: process.terminal().unwrap_or(false),
            cgroup_ns,
            rootfs: cpath(&rootfs)?,
            steps,
            labels,
            readonly_root: root.readonly().unwrap_or(false),
            hostname: spec.hostname().as_deref().map(cstr).transpose()?,
            rlimits,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            seccomp,
            last_cap: crate::caps::last_cap(),
            bounding: crate::caps::mask(caps.and_then(|c| c.bounding().as_ref()))?,
            effective: crate::caps::mask(caps.and_then(|c| c.effective().as_ref()))?,
            permitted: crate::caps::mask(caps.and_then(|c| c.permitted().as_ref()))?,
            inheritable: crate::caps::mask(caps.and_then(|c| c.inheritable().as_ref()))?,
            ambient: crate::caps::mask(caps.and_then(|c| c.ambient().as_ref()))?,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            cwd: cpath(&cwd)?,
            command: args.join(" "),
            candidates,
            argv: args.iter().map(cstr).collect::<Result<_, _>>()?,
            env: env.iter().map(cstr).collect::<Result<_, _>>()?,
        })
    }
}

/// The spec's rlimits as (resource, limit) pairs.
pub(crate) fn rlimits_of(
    process: &oci_spec::runtime::Process,
) -> Result<Vec<(libc::c_int, libc::rlimit)>, RuntimeError> {
    let mut rlimits = Vec::new();
    for r in process.rlimits().iter().flatten() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let resource =
            rlimit_resource(&name).ok_or_else(|| RuntimeError::BadUlimit { name: name.clone() })?;
        rlimits.push((
            resource,
            libc::rlimit {
                rlim_cur: r.soft(),
                rlim_max: r.hard(),
            },
        ));
    }
    Ok(rlimits)
}

/// The paths to try for command `first`: itself when it has a `/`, else
/// each directory of the environment's `PATH` (Docker's default if unset).
pub(crate) fn candidates(first: &str, env: &[String]) -> Result<Vec<CString>, RuntimeError> {
    if first.contains('/') {
        return Ok(vec![cstr(first)?]);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| cstr(format!("{}/{first}", d.trim_end_matches('/'))))
        .collect()
}

pub(crate) fn cstring(s: &str) -> Result<CString, RuntimeError> {
    cstr(s)
}

fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as libc::c_int)
}

/// A node the spec's `linux.devices` asks for, in the fresh `/dev` tmpfs
/// (`--privileged` lists the host's devices there).
fn device_node(d: &oci_spec::runtime::LinuxDevice) -> Result<Step, RuntimeError> {
    use oci_spec::runtime::LinuxDeviceType;
    let bad = |why: &str| RuntimeError::BadSpec {
        reason: format!("device {}: {why}", d.path().display()),
    };
    let name = d
        .path()
        .strip_prefix("/dev")
        .ok()
        .filter(|n| {
            let mut parts = n.components();
            matches!(parts.next(), Some(std::path::Component::Normal(_))) && parts.next().is_none()
        })
        .ok_or_else(|| bad("only nodes directly in /dev can be made"))?;
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        _ => return Err(bad("only character and block devices can be made")),
    };
    let number = |n: i64| u32::try_from(n).map_err(|_| bad("major and minor are 0 to 2^32-1"));
    Ok(Step::Mknod {
        dir: cstr("dev")?,
        name: cpath(name)?,
        mode: kind | (d.file_mode().unwrap_or(0o666) & 0o7777),
        major: number(d.major())?,
        minor: number(d.minor())?,
    })
}

/// `execve`'s argument and environment arrays: pointers into `strings`,
/// then NULL. Made before a clone, as the child must not allocate.
pub(crate) fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|c| c.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}
