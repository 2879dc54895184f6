//! The default seccomp profile and its compilation to BPF.
//!
//! Docker's profile is an allow-list of ~350 syscalls; what it leaves out
//! (for a container without extra capabilities) is what we list here,
//! returning EPERM, with everything else allowed. The effect for programs
//! is the same on the kernels we run on, and new harmless syscalls keep
//! working without a profile update. `clone3` returns ENOSYS, as in Docker,
//! so that libc falls back to `clone`, whose namespace flags are checked.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::RuntimeError;

/// Syscalls Docker's default profile refuses without extra capabilities.
const BLOCKED: &[&str] = &[
    "acct",
    "add_key",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "_sysctl",
    "sysfs",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
];

/// The namespace flags `clone` may not use without CAP_SYS_ADMIN.
const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn syscall(names: &[&str], errno: i32, args: Option<Vec<LinuxSeccompArg>>) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(LinuxSeccompAction::ScmpActErrno);
    s.set_errno_ret(Some(errno as u32));
    s.set_args(args);
    s
}

/// The profile a container gets unless `seccomp=unconfined` or `--privileged`.
pub fn default_profile() -> LinuxSeccomp {
    let mut syscalls = vec![
        syscall(BLOCKED, libc::EPERM, None),
        syscall(&["clone3"], libc::ENOSYS, None),
    ];
    for flag in CLONE_NS_FLAGS {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(*flag)
            .value_two(*flag)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build();
        // The builder fails only on missing fields, and all are set.
        if let Ok(arg) = arg {
            syscalls.push(syscall(&["clone"], libc::EPERM, Some(vec![arg])));
        }
    }
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActAllow);
    profile.set_syscalls(Some(syscalls));
    profile
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction, RuntimeError> {
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => {
            SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32))
        }
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(0)),
        other => {
            return Err(RuntimeError::Seccomp {
                reason: format!("action {other:?} is not supported"),
            });
        }
    })
}

fn condition(arg: &LinuxSeccompArg) -> Result<SeccompCondition, RuntimeError> {
    let index = u8::try_from(arg.index()).map_err(|_| RuntimeError::Seccomp {
        reason: "argument index > 5".into(),
    })?;
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // libseccomp's MASKED_EQ: (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(|e| {
        RuntimeError::Seccomp {
            reason: e.to_string(),
        }
    })
}

/// Syscall number to its rules; `None` matches unconditionally.
type RulesByNr = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// Compile `profile` for this machine into BPF programs, applied in order.
///
/// The kernel runs every installed filter and keeps the most restrictive
/// answer, so one filter per action (each falling back to the default)
/// is exact when the default is "allow"; other shapes must use one action.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, RuntimeError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| RuntimeError::Seccomp {
        reason: e.to_string(),
    })?;
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    // action -> syscall nr -> rules (an empty list matches unconditionally)
    let mut groups: Vec<(SeccompAction, RulesByNr)> = Vec::new();
    for sc in profile.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == default {
            continue;
        }
        let idx = match groups.iter().position(|(a, _)| *a == act) {
            Some(i) => i,
            None => {
                groups.push((act, BTreeMap::new()));
                groups.len() - 1
            }
        };
        let rule = match sc.args() {
            Some(args) if !args.is_empty() => Some(
                SeccompRule::new(args.iter().map(condition).collect::<Result<_, _>>()?).map_err(
                    |e| RuntimeError::Seccomp {
                        reason: e.to_string(),
                    },
                )?,
            ),
            _ => None,
        };
        for name in sc.names() {
            let Some(nr) = syscall_nr(name) else {
                // As runc does: a profile may name syscalls this arch lacks.
                tracing::debug!(syscall = %name, "seccomp: unknown syscall skipped");
                continue;
            };
            let entry = groups[idx].1.entry(nr).or_insert_with(|| Some(Vec::new()));
            match (entry.as_mut(), &rule) {
                (Some(rules), Some(r)) => rules.push(r.clone()),
                _ => *entry = None,
            }
        }
    }
    if default != SeccompAction::Allow && groups.len() > 1 {
        return Err(RuntimeError::Seccomp {
            reason: "a profile whose default is not SCMP_ACT_ALLOW may use only one other action"
                .into(),
        });
    }
    let mut programs = Vec::new();
    if arch == TargetArch::x86_64 && default == SeccompAction::Allow {
        programs.push(x32_guard());
    }
    let compiled = groups
        .into_iter()
        .map(|(act, rules)| {
            let rules = rules
                .into_iter()
                .map(|(nr, r)| (nr, r.unwrap_or_default()))
                .collect();
            let filter = SeccompFilter::new(rules, default.clone(), act, arch).map_err(|e| {
                RuntimeError::Seccomp {
                    reason: e.to_string(),
                }
            })?;
            BpfProgram::try_from(filter).map_err(|e| RuntimeError::Seccomp {
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    programs.extend(compiled);
    Ok(programs)
}

/// x32 syscalls carry the x86_64 audit arch with bit 30 set in the
/// number, so a deny-list keyed by number would miss them: refuse them
/// all (ENOSYS), as the x32 ABI is not something containers here use.
fn x32_guard() -> BpfProgram {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let stmt = |code: u32, k: u32| seccompiler::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // A = seccomp_data.nr (offset 0)
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        seccompiler::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Syscall numbers of this architecture for the names profiles use.
fn syscall_nr(short: &str) -> Option<i64> {
    // Defined after `name` so that the macro's `name` is this binding.
    let sys = format!("SYS_{short}");
    let name = sys.as_str();
    macro_rules! table {
        ($($n:ident),* $(,)?) => {
            match name {
                $(stringify!($n) => return Some(libc::$n as i64),)*
                _ => {}
            }
        };
    }
    table!(
        SYS_acct,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_io_uring_setup,
        SYS_add_key,
        SYS_bpf,
        SYS_clock_adjtime,
        SYS_clock_settime,
        SYS_delete_module,
        SYS_fanotify_init,
        SYS_finit_module,
        SYS_fsconfig,
        SYS_fsmount,
        SYS_fsopen,
        SYS_fspick,
        SYS_get_mempolicy,
        SYS_init_module,
        SYS_kcmp,
        SYS_kexec_file_load,
        SYS_kexec_load,
        SYS_keyctl,
        SYS_lookup_dcookie,
        SYS_mbind,
        SYS_mount,
        SYS_mount_setattr,
        SYS_move_mount,
        SYS_move_pages,
        SYS_name_to_handle_at,
        SYS_nfsservctl,
        SYS_open_by_handle_at,
        SYS_open_tree,
        SYS_perf_event_open,
        SYS_pivot_root,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_quotactl,
        SYS_quotactl_fd,
        SYS_reboot,
        SYS_request_key,
        SYS_set_mempolicy,
        SYS_setdomainname,
        SYS_sethostname,
        SYS_setns,
        SYS_settimeofday,
        SYS_swapoff,
        SYS_swapon,
        SYS_syslog,
        SYS_umount2,
        SYS_unshare,
        SYS_userfaultfd,
        SYS_vhangup,
        SYS_clone,
        SYS_clone3,
        SYS_ptrace,
        SYS_personality,
        SYS_chroot,
    );
    #[cfg(target_arch = "x86_64")]
    table!(
        SYS_ioperm,
        SYS_iopl,
        SYS__sysctl,
        SYS_sysfs,
        SYS_uselib,
        SYS_ustat,
    );
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn default_profile_compiles_to_one_filter_per_errno() {
        let progs = compile(&default_profile()).unwrap();
        let expected = if std::env::consts::ARCH == "x86_64" {
            3
        } else {
            2
        };
        assert_eq!(progs.len(), expected, "x32 guard, EPERM and ENOSYS");
        assert!(progs.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn blocked_names_are_known_here() {
        for name in [
            "mount",
            "io_uring_setup",
            "unshare",
            "keyctl",
            "add_key",
            "kexec_load",
            "reboot",
            "swapon",
            "init_module",
        ] {
            assert!(syscall_nr(name).is_some(), "{name}");
        }
    }
}
