//! The OCI runtime spec of a container, built from the image's defaults and
//! the `docker run`-style options — the one place that knows Docker's
//! defaults (capabilities, mounts, masked paths, environment).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxNamespace, LinuxNamespaceType, Mount, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};
use serde::de::IntoDeserializer;

use crate::error::RuntimeError;
use crate::seccomp;
use crate::user::resolve_user;

/// Docker's default PATH, added when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set: CapEff `0x00000000a80425fb`.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's (25+) masked paths: host information a container must not
/// read (`/sys/devices/virtual/powercap` holds RAPL energy counters, a
/// side channel on other tenants' work). runc masks a directory with an
/// empty read-only tmpfs and a file with `/dev/null`; a path this kernel
/// lacks is skipped.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// What the image says a container runs with (its `config` section).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
}

/// One `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// `nofile`, `nproc`, `core`, ... (with or without `RLIMIT_`).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// A bind mount or tmpfs the user asked for (`-v`, `--mount`, `--tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraMount {
    Bind {
        source: PathBuf,
        destination: String,
        read_only: bool,
    },
    Tmpfs {
        destination: String,
        options: Vec<String>,
    },
}

/// The `docker run` options that shape the runtime spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// `--entrypoint`; `Some(vec![])` clears the image's.
    pub entrypoint: Option<Vec<String>>,
    /// The arguments after the image name; `None` keeps the image's Cmd.
    pub cmd: Option<Vec<String>>,
    /// `-e KEY=VALUE`. A bare `KEY` removes the variable, as in Docker's
    /// API: looking a bare name up in the caller's environment is the
    /// CLI's job, since this process's environment is not the user's.
    pub env: Vec<String>,
    /// The lines of `--env-file` files, in order; `#` comments and blank lines are skipped.
    pub env_file_lines: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// Defaults to the first 12 characters of the container id.
    pub hostname: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    pub ulimits: Vec<Ulimit>,
    pub read_only: bool,
    pub mounts: Vec<ExtraMount>,
    /// A per-container directory where `hostname`, `hosts` and
    /// `resolv.conf` are written and bind-mounted from; `None` leaves the
    /// image's files alone.
    pub etc_dir: Option<PathBuf>,
    /// `--add-host name:ip` lines for `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// `-t`: the process gets a terminal (`process.terminal`) and, unless
    /// the image or `-e` set one, `TERM=xterm` (as Docker).
    pub tty: bool,
}

/// Build the runtime spec for container `id` whose root file system is
/// (already mounted) at `rootfs`. Reads the rootfs's `/etc/passwd` and
/// `/etc/group` for the user; writes the `etc_dir` files if one is given.
pub fn build_spec(
    id: &str,
    rootfs: &Path,
    image: &ImageDefaults,
    opts: &RunOptions,
) -> Result<Spec, RuntimeError> {
    let args = command(image, opts)?;
    let user_spec = opts.user.as_deref().unwrap_or(&image.user);
    let user = resolve_user(rootfs, user_spec)?;
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());

    let mut env = Vec::new();
    let unset = |env: &mut Vec<String>, key: &str| env.retain(|e| e.split('=').next() != Some(key));
    let set = |env: &mut Vec<String>, kv: String| {
        unset(env, kv.split('=').next().unwrap_or(""));
        env.push(kv);
    };
    set(&mut env, format!("PATH={DEFAULT_PATH}"));
    set(&mut env, format!("HOSTNAME={hostname}"));
    if opts.tty {
        set(&mut env, "TERM=xterm".into());
    }
    for e in &image.env {
        set(&mut env, e.clone());
    }
    let user_env = opts
        .env_file_lines
        .iter()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .chain(opts.env.iter().map(String::as_str));
    for e in user_env {
        if e.contains('=') {
            set(&mut env, e.to_string());
        } else {
            unset(&mut env, e);
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }

    let cwd = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| image.working_dir.clone());
    let cwd = if cwd.is_empty() { "/".to_string() } else { cwd };
    if !cwd.starts_with('/') {
        return Err(RuntimeError::BadSpec {
            reason: format!("working directory {cwd:?} is not absolute"),
        });
    }

    let mut process = Process::default();
    process.set_args(Some(args));
    process.set_terminal(Some(opts.tty));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(cwd));
    let mut oci_user = User::default();
    oci_user.set_uid(user.uid);
    oci_user.set_gid(user.gid);
    oci_user.set_additional_gids(Some(user.additional_gids.clone()));
    process.set_user(oci_user);
    let caps = capabilities(opts)?;
    // Docker's profile follows the bounding set: what --cap-add grants
    // becomes callable, and what --cap-drop removes the filter refuses too.
    let seccomp_caps = caps.bounding().clone().unwrap_or_default();
    process.set_capabilities(Some(caps));
    process.set_no_new_privileges(Some(opts.no_new_privileges));
    process.set_rlimits(Some(rlimits(&opts.ulimits)?));

    let mut spec = Spec::default();
    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf());
    root.set_readonly(Some(opts.read_only));
    spec.set_root(Some(root));
    spec.set_hostname(Some(hostname.clone()));
    spec.set_process(Some(process));
    spec.set_annotations(None);
    spec.set_mounts(Some(mounts(opts, &hostname)?));

    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_resources(Some(crate::devices::to_spec(opts.privileged)?));
    linux.set_namespaces(Some(namespaces()));
    linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
    if opts.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
        linux.set_devices(Some(crate::devices::host_nodes()));
    }
    if !opts.privileged && !opts.seccomp_unconfined {
        linux.set_seccomp(Some(seccomp::default_profile(&seccomp_caps)));
    }
    spec.set_linux(Some(linux));
    Ok(spec)
}

fn command(image: &ImageDefaults, opts: &RunOptions) -> Result<Vec<String>, RuntimeError> {
    // Docker: an --entrypoint override also drops the image's Cmd.
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(ep) => (ep.clone(), opts.cmd.clone().unwrap_or_default()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            opts.cmd
                .clone()
                .or_else(|| image.cmd.clone())
                .unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(RuntimeError::NoCommand);
    }
    Ok(args)
}

fn namespaces() -> Vec<LinuxNamespace> {
    [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        ns
    })
    .collect()
}

/// Parse `NET_ADMIN`, `cap_net_admin` or `CAP_NET_ADMIN`.
pub fn parse_capability(name: &str) -> Result<Capability, RuntimeError> {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        name.into_deserializer();
    serde::Deserialize::deserialize(de).map_err(|_| RuntimeError::BadCapability {
        name: name.to_string(),
    })
}

fn capabilities(opts: &RunOptions) -> Result<LinuxCapabilities, RuntimeError> {
    let is_all = |names: &[String]| names.iter().any(|n| n.eq_ignore_ascii_case("ALL"));
    let parse = |names: &[String]| -> Result<HashSet<Capability>, RuntimeError> {
        names
            .iter()
            .filter(|n| !n.eq_ignore_ascii_case("ALL"))
            .map(|n| parse_capability(n))
            .collect()
    };
    let (add, drop) = (parse(&opts.cap_add)?, parse(&opts.cap_drop)?);
    // moby's TweakCapabilities: "ALL" added wins, minus the drops; "ALL"
    // dropped leaves only the adds; otherwise drops, then adds.
    let set: HashSet<Capability> = if opts.privileged || is_all(&opts.cap_add) {
        crate::caps::all_supported()
            .difference(&drop)
            .cloned()
            .collect()
    } else if is_all(&opts.cap_drop) {
        add
    } else {
        let defaults: HashSet<Capability> = DEFAULT_CAPABILITIES
            .iter()
            .map(|c| parse_capability(c))
            .collect::<Result<_, _>>()?;
        defaults.difference(&drop).cloned().chain(add).collect()
    };
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set.clone()));
    caps.set_inheritable(Some(HashSet::new()));
    caps.set_ambient(Some(HashSet::new()));
    Ok(caps)
}

fn rlimits(ulimits: &[Ulimit]) -> Result<Vec<PosixRlimit>, RuntimeError> {
    ulimits
        .iter()
        .map(|u| {
            let upper = u.name.to_uppercase();
            let name = if upper.starts_with("RLIMIT_") {
                upper
            } else {
                format!("RLIMIT_{upper}")
            };
            let de: serde::de::value::StringDeserializer<serde::de::value::Error> =
                name.into_deserializer();
            let typ: PosixRlimitType =
                serde::Deserialize::deserialize(de).map_err(|_| RuntimeError::BadUlimit {
                    name: u.name.clone(),
                })?;
            if u.soft > u.hard {
                return Err(RuntimeError::BadUlimit {
                    name: format!("{} (soft {} > hard {})", u.name, u.soft, u.hard),
                });
            }
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(u.soft)
                .hard(u.hard)
                .build()
                .map_err(|e| RuntimeError::BadSpec {
                    reason: e.to_string(),
                })
        })
        .collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

fn mounts(opts: &RunOptions, hostname: &str) -> Result<Vec<Mount>, RuntimeError> {
    let sys_mode = if opts.privileged { "rw" } else { "ro" };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
    ];
    if let Some(dir) = &opts.etc_dir {
        for (name, dest) in crate::etc::write_etc_files(dir, hostname, &opts.extra_hosts)? {
            out.push(mount(
                &dest,
                "bind",
                &name.to_string_lossy(),
                &["rbind", "rprivate"],
            ));
        }
    }
    for m in &opts.mounts {
        match m {
            ExtraMount::Bind {
                source,
                destination,
                read_only,
            } => {
                check_destination(destination)?;
                let mode = if *read_only { "ro" } else { "rw" };
                out.push(mount(
                    destination,
                    "bind",
                    &source.to_string_lossy(),
                    &["rbind", "rprivate", mode],
                ));
            }
            ExtraMount::Tmpfs {
                destination,
                options,
            } => {
                check_destination(destination)?;
                let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
                o.extend(options.iter().map(String::as_str));
                out.push(mount(destination, "tmpfs", "tmpfs", &o));
            }
        }
    }
    Ok(out)
}

fn check_destination(dest: &str) -> Result<(), RuntimeError> {
    if !dest.starts_with('/') || dest == "/" {
        return Err(RuntimeError::BadMount {
            destination: dest.to_string(),
            reason: "the destination must be an absolute path other than /".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
