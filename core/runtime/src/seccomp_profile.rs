//! Docker's default seccomp profile, as data, and its specialisation to
//! one container's capabilities: an allow-list, everything else refused.
//!
//! Derived from moby's `profiles/seccomp/default_linux.go` (Apache-2.0,
//! Copyright The Moby Authors) as Docker Engine 28 ships it: moby master
//! after PRs #46762 (io_uring no longer allowed), #50077 (calls up to
//! Linux 6.13) and #50097 (lsm_* behind CAP_SYS_ADMIN), extracted into
//! github.com/moby/profiles in July 2025; read at moby/profiles
//! `seccomp/default_linux.go` 6e3ef80 and `seccomp/default.json` 190fa92.
//! Changes proposed there since (keyring calls allowed, unshare ungated,
//! socket families as an allow-list) are not followed here yet.
//!
//! The entries, their order, the `includes`/`excludes` filters and the
//! errno choices are moby's: unknown calls get EPERM (`defaultErrnoRet:
//! 1`), `clone3` gets ENOSYS without CAP_SYS_ADMIN so that libc falls back
//! to `clone`, whose namespace flags the profile can see. The compiler
//! adds what runc adds on top: calls numbered above everything the profile
//! names get ENOSYS, so a program can tell "too new for this profile" from
//! "refused" and fall back (see `seccomp::compile`).
//!
//! One deviation: on arm64 hosts moby also lists 32-bit ARM; we have no
//! ARM system call table, so 32-bit ARM programs are refused outright there.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::syscall_table::Abi;

#[derive(Clone, Copy)]
enum Act {
    Allow,
    Errno(u32),
}

/// One argument comparison, as in an OCI `LinuxSeccompArg`.
struct Cond {
    index: usize,
    value: u64,
    value_two: u64,
    op: LinuxSeccompOperator,
}

/// moby's `Filter`: all `caps` held, the host's Go architecture name in
/// `arches`, the kernel at least `min_kernel`. An empty part always holds.
struct Filter {
    caps: &'static [Capability],
    arches: &'static [&'static str],
    min_kernel: Option<(u32, u32)>,
}

/// One entry of the profile: `includes` must hold and `excludes` must not.
struct Entry {
    names: &'static [&'static str],
    action: Act,
    args: &'static [Cond],
    includes: Filter,
    excludes: Filter,
}

const ANY: Filter = Filter {
    caps: &[],
    arches: &[],
    min_kernel: None,
};

const fn caps(caps: &'static [Capability]) -> Filter {
    Filter {
        caps,
        arches: &[],
        min_kernel: None,
    }
}

const fn arches(arches: &'static [&'static str]) -> Filter {
    Filter {
        caps: &[],
        arches,
        min_kernel: None,
    }
}

const fn allow(names: &'static [&'static str], includes: Filter) -> Entry {
    Entry {
        names,
        action: Act::Allow,
        args: &[],
        includes,
        excludes: ANY,
    }
}

const fn arg0(op: LinuxSeccompOperator, value: u64) -> [Cond; 1] {
    [Cond {
        index: 0,
        value,
        value_two: 0,
        op,
    }]
}

/// `personality(value)` is allowed.
macro_rules! personality {
    ($value:expr) => {
        Entry {
            names: &["personality"],
            action: Act::Allow,
            args: &arg0(LinuxSeccompOperator::ScmpCmpEq, $value),
            includes: ANY,
            excludes: ANY,
        }
    };
}

/// `CLONE_NEW*`: the flags `clone` may not carry without CAP_SYS_ADMIN.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// `AF_VSOCK`: host/guest sockets are not namespaced, so no container
/// gets them (moby blocks `socket(AF_VSOCK, ...)`).
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;

/// What every container may call, whatever its capabilities.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// The profile, in moby's order.
const PROFILE: &[Entry] = &[
    allow(ALLOWED, ANY),
    // ptrace no longer bypasses seccomp since 4.8.
    allow(
        &["process_vm_readv", "process_vm_writev", "ptrace"],
        Filter {
            caps: &[],
            arches: &[],
            min_kernel: Some((4, 8)),
        },
    ),
    Entry {
        names: &["socket"],
        action: Act::Allow,
        args: &arg0(LinuxSeccompOperator::ScmpCmpNe, AF_VSOCK),
        includes: ANY,
        excludes: ANY,
    },
    // PER_LINUX, PER_LINUX32, UNAME26 (alone and with PER_LINUX32), and
    // the 0xffffffff query.
    personality!(0x0),
    personality!(0x0008),
    personality!(0x20000),
    personality!(0x20008),
    personality!(0xffff_ffff),
    allow(&["sync_file_range2", "swapcontext"], arches(&["ppc64le"])),
    allow(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        arches(&["arm", "arm64"]),
    ),
    allow(&["arch_prctl"], arches(&["amd64", "x32"])),
    allow(&["modify_ldt"], arches(&["amd64", "x32", "x86"])),
    allow(
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        arches(&["s390", "s390x"]),
    ),
    allow(&["riscv_flush_icache"], arches(&["riscv64"])),
    allow(&["open_by_handle_at"], caps(&[Capability::DacReadSearch])),
    allow(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        caps(&[Capability::SysAdmin]),
    ),
    Entry {
        names: &["clone"],
        action: Act::Allow,
        args: &[Cond {
            index: 0,
            value: CLONE_NAMESPACES,
            value_two: 0,
            op: LinuxSeccompOperator::ScmpCmpMaskedEq,
        }],
        includes: ANY,
        excludes: Filter {
            caps: &[Capability::SysAdmin],
            arches: &["s390", "s390x"],
            min_kernel: None,
        },
    },
    // s390 passes clone's flags second.
    Entry {
        names: &["clone"],
        action: Act::Allow,
        args: &[Cond {
            index: 1,
            value: CLONE_NAMESPACES,
            value_two: 0,
            op: LinuxSeccompOperator::ScmpCmpMaskedEq,
        }],
        includes: arches(&["s390", "s390x"]),
        excludes: caps(&[Capability::SysAdmin]),
    },
    // clone3 passes its flags in memory, out of the filter's sight: ENOSYS
    // makes libc fall back to clone, whose flags are checked above.
    Entry {
        names: &["clone3"],
        action: Act::Errno(libc::ENOSYS as u32),
        args: &[],
        includes: ANY,
        excludes: caps(&[Capability::SysAdmin]),
    },
    allow(&["reboot"], caps(&[Capability::SysBoot])),
    allow(&["chroot"], caps(&[Capability::SysChroot])),
    allow(
        &["delete_module", "init_module", "finit_module"],
        caps(&[Capability::SysModule]),
    ),
    allow(&["acct"], caps(&[Capability::SysPacct])),
    allow(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        caps(&[Capability::SysPtrace]),
    ),
    allow(&["iopl", "ioperm"], caps(&[Capability::SysRawio])),
    allow(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        caps(&[Capability::SysTime]),
    ),
    allow(&["vhangup"], caps(&[Capability::SysTtyConfig])),
    allow(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        caps(&[Capability::SysNice]),
    ),
    allow(&["syslog"], caps(&[Capability::Syslog])),
    allow(&["bpf"], caps(&[Capability::Bpf])),
    allow(&["perf_event_open"], caps(&[Capability::Perfmon])),
];

/// What a filter is evaluated against: the container and the host.
struct Context<'a> {
    caps: &'a HashSet<Capability>,
    /// The host's architecture under Go's name, as moby's filters use it.
    arch: &'static str,
    kernel: Option<(u32, u32)>,
}

impl Filter {
    /// moby's `includes`: every part that is set holds.
    fn all_hold(&self, ctx: &Context<'_>) -> bool {
        self.caps.iter().all(|c| ctx.caps.contains(c))
            && (self.arches.is_empty() || self.arches.contains(&ctx.arch))
            && self
                .min_kernel
                .is_none_or(|min| ctx.kernel.is_some_and(|k| k >= min))
    }

    /// moby's `excludes`: some part that is set holds.
    fn any_holds(&self, ctx: &Context<'_>) -> bool {
        self.caps.iter().any(|c| ctx.caps.contains(c))
            || self.arches.contains(&ctx.arch)
            || self
                .min_kernel
                .is_some_and(|min| ctx.kernel.is_some_and(|k| k >= min))
    }
}

/// Go's name for this build's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The running kernel's major and minor version.
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The OCI architectures of the profile on this host: the native one and
/// those its kernel also runs that we have tables for.
fn architectures() -> Vec<Arch> {
    match Abi::native() {
        Some(Abi::X86_64) => vec![Abi::X86_64, Abi::X86, Abi::X32],
        Some(abi) => vec![abi],
        None => Vec::new(),
    }
    .into_iter()
    .map(Abi::arch)
    .collect()
}

/// The OCI form of `entry`; `None` if an argument cannot be expressed,
/// which drops the entry and so refuses its calls rather than widen it.
fn to_oci(entry: &Entry) -> Option<LinuxSyscall> {
    let mut s = LinuxSyscall::default();
    s.set_names(entry.names.iter().map(|n| n.to_string()).collect());
    match entry.action {
        Act::Allow => {
            s.set_action(LinuxSeccompAction::ScmpActAllow);
        }
        Act::Errno(errno) => {
            s.set_action(LinuxSeccompAction::ScmpActErrno);
            s.set_errno_ret(Some(errno));
        }
    }
    if !entry.args.is_empty() {
        let args = entry
            .args
            .iter()
            .map(|c| {
                LinuxSeccompArgBuilder::default()
                    .index(c.index)
                    .value(c.value)
                    .value_two(c.value_two)
                    .op(c.op)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>();
        match args {
            Ok(args) => s.set_args(Some(args)),
            Err(e) => {
                tracing::error!(syscalls = ?entry.names, error = %e, "seccomp: entry dropped");
                return None;
            }
        };
    }
    Some(s)
}

/// Docker's default profile for a container whose bounding set is `caps`
/// (moby specialises it on the bounding set too): what `--cap-add` adds
/// becomes callable, as in Docker, where e.g. CAP_SYS_ADMIN both grants
/// the capability and lets `mount`, `unshare` and `setns` through.
pub fn default_profile(caps: &HashSet<Capability>) -> LinuxSeccomp {
    let kernel = kernel_version();
    if kernel.is_none() {
        tracing::warn!(
            "seccomp: cannot read the kernel version from /proc/sys/kernel/osrelease; \
             ptrace stays behind CAP_SYS_PTRACE"
        );
    }
    let ctx = Context {
        caps,
        arch: go_arch(),
        kernel,
    };
    let syscalls = PROFILE
        .iter()
        .filter(|e| e.includes.all_hold(&ctx) && !e.excludes.any_holds(&ctx))
        .filter_map(to_oci)
        .collect();
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::EPERM as u32));
    profile.set_architectures(Some(architectures()));
    profile.set_syscalls(Some(syscalls));
    profile
}

#[cfg(test)]
#[path = "seccomp_profile_tests.rs"]
mod tests;
