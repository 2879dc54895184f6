#![allow(clippy::unwrap_used, reason = "tests")]
//! The compiled programs are run here by a small BPF interpreter, so these
//! tests assert what a call gets, not how the program looks; the kernel's
//! verdict on real calls is tested in tests/security.rs.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::sock_filter;

use super::*;
use crate::spec::{DEFAULT_CAPABILITIES, parse_capability};
use crate::syscall_table::X32_SYSCALL_BIT;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// `struct seccomp_data` for one call.
#[derive(Clone, Copy)]
struct Call {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

/// Runs `prog` on `call` as the kernel would: the return value and the
/// number of instructions executed.
fn run(prog: &[sock_filter], call: Call) -> (u32, usize) {
    let word = |off: u32| -> u32 {
        match off {
            0 => call.nr,
            4 => call.arch,
            16..=63 => {
                let arg = call.args[(off as usize - 16) / 8];
                if (off - 16) % 8 == 4 {
                    (arg >> 32) as u32
                } else {
                    arg as u32
                }
            }
            _ => panic!("load from offset {off}"),
        }
    };
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let i = &prog[pc];
        steps += 1;
        let code = u32::from(i.code);
        if code == libc::BPF_RET | libc::BPF_K {
            return (i.k, steps);
        }
        pc += 1;
        match code {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => a = word(i.k),
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= i.k,
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
            c => {
                let taken = match c & !libc::BPF_K {
                    x if x == libc::BPF_JMP | libc::BPF_JEQ => a == i.k,
                    x if x == libc::BPF_JMP | libc::BPF_JGT => a > i.k,
                    x if x == libc::BPF_JMP | libc::BPF_JGE => a >= i.k,
                    x if x == libc::BPF_JMP | libc::BPF_JSET => a & i.k != 0,
                    _ => panic!("opcode {c:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
    }
}

fn caps(extra: &[&str], drop: &[&str]) -> HashSet<Capability> {
    DEFAULT_CAPABILITIES
        .iter()
        .chain(extra)
        .filter(|c| !drop.contains(c))
        .map(|c| parse_capability(c).unwrap())
        .collect()
}

/// The one program compiled from `profile`.
fn program(profile: &LinuxSeccomp) -> Vec<sock_filter> {
    let mut progs = compile(profile).unwrap();
    assert_eq!(progs.len(), 1);
    progs.remove(0)
}

/// What `name` gets with these arguments, called natively.
fn verdict(prog: &[sock_filter], name: &str, args: [u64; 6]) -> u32 {
    let abi = Abi::native().unwrap();
    let nr = abi.number(name).unwrap();
    run(
        prog,
        Call {
            nr,
            arch: abi.audit_arch(),
            args,
        },
    )
    .0
}

fn no_args(prog: &[sock_filter], name: &str) -> u32 {
    verdict(prog, name, [0; 6])
}

fn arg0(prog: &[sock_filter], name: &str, a0: u64) -> u32 {
    verdict(prog, name, [a0, 0, 0, 0, 0, 0])
}

#[test]
fn default_caps_allow_ordinary_programs_and_refuse_the_rest_with_eperm() {
    let prog = program(&default_profile(&caps(&[], &[])));
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "exit_group",
        "futex",
        "epoll_pwait2",
        "wait4",
        "chroot",  // CAP_SYS_CHROOT is a default capability
        "ptrace",  // allowed since Linux 4.8 closed the seccomp bypass
        "setns",   // refused: CAP_SYS_ADMIN
        "mount",   // refused: CAP_SYS_ADMIN
        "swapon",  // never listed
        "reboot",  // CAP_SYS_BOOT
        "keyctl",  // not namespaced
        "add_key", // not namespaced
        "io_uring_setup",
        "kcmp", // CAP_SYS_PTRACE
    ] {
        let want = match name {
            "setns" | "mount" | "swapon" | "reboot" | "keyctl" | "add_key" | "io_uring_setup"
            | "kcmp" => EPERM,
            _ => ALLOW,
        };
        assert_eq!(no_args(&prog, name), want, "{name}");
    }
    if Abi::native() == Some(Abi::X86_64) {
        assert_eq!(no_args(&prog, "unshare"), EPERM);
        assert_eq!(no_args(&prog, "arch_prctl"), ALLOW);
        assert_eq!(no_args(&prog, "iopl"), EPERM);
    }
}

#[test]
fn clone_namespaces_and_clone3_need_sys_admin() {
    let sigchld = libc::SIGCHLD as u64;
    let newuser = libc::CLONE_NEWUSER as u64;
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    let prog = program(&default_profile(&caps(&[], &[])));
    assert_eq!(arg0(&prog, "clone", sigchld), ALLOW);
    assert_eq!(arg0(&prog, "clone", thread), ALLOW);
    assert_eq!(arg0(&prog, "clone", newuser | sigchld), EPERM);
    assert_eq!(arg0(&prog, "clone", libc::CLONE_NEWNS as u64), EPERM);
    assert_eq!(arg0(&prog, "clone", libc::CLONE_NEWCGROUP as u64), EPERM);
    assert_eq!(no_args(&prog, "clone3"), ENOSYS);

    let admin = program(&default_profile(&caps(&["SYS_ADMIN"], &[])));
    assert_eq!(arg0(&admin, "clone", newuser | sigchld), ALLOW);
    assert_eq!(no_args(&admin, "clone3"), ALLOW);
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "sethostname",
        "fsopen",
    ] {
        assert_eq!(no_args(&admin, name), ALLOW, "{name} with CAP_SYS_ADMIN");
    }
    // Still refused: no capability opens these.
    assert_eq!(no_args(&admin, "swapon"), EPERM);
    assert_eq!(no_args(&admin, "kexec_load"), EPERM);
}

#[test]
fn capabilities_open_their_calls() {
    let ptrace = program(&default_profile(&caps(&["SYS_PTRACE"], &[])));
    for name in ["kcmp", "process_madvise", "pidfd_getfd", "ptrace"] {
        assert_eq!(no_args(&ptrace, name), ALLOW, "{name}");
    }
    let more = program(&default_profile(&caps(
        &[
            "SYS_BOOT",
            "SYS_TIME",
            "SYS_NICE",
            "SYS_MODULE",
            "SYSLOG",
            "BPF",
        ],
        &[],
    )));
    for name in [
        "reboot",
        "settimeofday",
        "clock_settime",
        "mbind",
        "init_module",
        "syslog",
        "bpf",
    ] {
        assert_eq!(no_args(&more, name), ALLOW, "{name}");
    }
    assert_eq!(no_args(&more, "mount"), EPERM);
    // Dropping a default capability closes its calls too.
    let no_chroot = program(&default_profile(&caps(&[], &["CAP_SYS_CHROOT"])));
    assert_eq!(no_args(&no_chroot, "chroot"), EPERM);
}

#[test]
fn argument_rules_personality_and_socket() {
    let prog = program(&default_profile(&caps(&[], &[])));
    for p in [0, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(arg0(&prog, "personality", p), ALLOW, "personality({p:#x})");
    }
    // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC: refused.
    assert_eq!(arg0(&prog, "personality", 0x0040000), EPERM);
    assert_eq!(arg0(&prog, "personality", 0x0400000), EPERM);
    // The high half counts: 64-bit comparisons, as libseccomp does.
    assert_eq!(arg0(&prog, "personality", 1 << 32), EPERM);

    assert_eq!(arg0(&prog, "socket", libc::AF_INET as u64), ALLOW);
    assert_eq!(arg0(&prog, "socket", libc::AF_UNIX as u64), ALLOW);
    assert_eq!(arg0(&prog, "socket", libc::AF_NETLINK as u64), ALLOW);
    assert_eq!(arg0(&prog, "socket", libc::AF_VSOCK as u64), EPERM);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn unknown_numbers_get_eperm_and_numbers_past_the_profile_enosys() {
    let prog = program(&default_profile(&caps(&[], &[])));
    let x86_64 = |nr| {
        run(
            &prog,
            Call {
                nr,
                arch: Abi::X86_64.audit_arch(),
                args: [0; 6],
            },
        )
        .0
    };
    // uselib (134) and the unassigned 387: holes below the last listed call.
    assert_eq!(x86_64(134), EPERM);
    assert_eq!(x86_64(387), EPERM);
    // removexattrat (466) is the last call Docker's profile names.
    assert_eq!(x86_64(466), ALLOW);
    assert_eq!(x86_64(467), ENOSYS);
    assert_eq!(x86_64(1000), ENOSYS);
    assert_eq!(x86_64(!X32_SYSCALL_BIT), ENOSYS);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn i386_and_x32_calls_are_filtered_in_their_own_tables() {
    let prog = program(&default_profile(&caps(&[], &[])));
    let call = |abi: Abi, name: &str, a0: u64| {
        let nr = abi.number(name).unwrap();
        let args = [a0, 0, 0, 0, 0, 0];
        run(
            &prog,
            Call {
                nr,
                arch: abi.audit_arch(),
                args,
            },
        )
        .0
    };
    assert_eq!(call(Abi::X86, "read", 0), ALLOW);
    assert_eq!(call(Abi::X86, "socketcall", 0), ALLOW);
    assert_eq!(call(Abi::X86, "mount", 0), EPERM);
    assert_eq!(
        call(Abi::X86, "clone", libc::CLONE_NEWUSER as u64),
        EPERM,
        "32-bit clone is checked too"
    );
    assert_eq!(call(Abi::X86, "clone", libc::SIGCHLD as u64), ALLOW);
    assert_eq!(call(Abi::X32, "read", 0), ALLOW);
    assert_eq!(call(Abi::X32, "ioctl", 0), ALLOW);
    assert_eq!(call(Abi::X32, "mount", 0), EPERM);
    // x86_64's ioctl number is not an x32 call.
    let x32_16 = run(
        &prog,
        Call {
            nr: X32_SYSCALL_BIT | 16,
            arch: Abi::X86_64.audit_arch(),
            args: [0; 6],
        },
    );
    assert_eq!(x32_16.0, EPERM);
    // An ABI the profile does not list: the process is killed.
    let arm64 = run(
        &prog,
        Call {
            nr: 63,
            arch: Abi::Aarch64.audit_arch(),
            args: [0; 6],
        },
    );
    assert_eq!(arm64.0, KILL);
}

#[test]
fn a_call_is_decided_in_a_few_dozen_instructions() {
    let prog = program(&default_profile(&caps(&[], &[])));
    assert!(prog.len() < 1000, "{} instructions", prog.len());
    let abi = Abi::native().unwrap();
    let worst = (0..600)
        .map(|nr| {
            run(
                &prog,
                Call {
                    nr,
                    arch: abi.audit_arch(),
                    args: [0; 6],
                },
            )
            .1
        })
        .max()
        .unwrap();
    // A linear allow-list of ~350 calls would take ~700 for the last one.
    assert!(worst <= 40, "worst case {worst} instructions");
}

fn rule(
    names: &[&str],
    action: LinuxSeccompAction,
    args: &[(usize, u64, u64, LinuxSeccompOperator)],
) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(action);
    if !args.is_empty() {
        s.set_args(Some(
            args.iter()
                .map(|(index, value, two, op)| {
                    LinuxSeccompArgBuilder::default()
                        .index(*index)
                        .value(*value)
                        .value_two(*two)
                        .op(*op)
                        .build()
                        .unwrap()
                })
                .collect(),
        ));
    }
    s
}

fn custom(default: LinuxSeccompAction, syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut p = LinuxSeccomp::default();
    p.set_default_action(default);
    p.set_syscalls(Some(syscalls));
    p
}

#[test]
fn any_oci_profile_compiles_with_its_actions_and_errnos() {
    use LinuxSeccompAction::*;
    use LinuxSeccompOperator::*;
    let mut refuse = rule(&["mkdir", "mkdirat"], ScmpActErrno, &[]);
    refuse.set_errno_ret(Some(libc::EROFS as u32));
    let profile = custom(
        ScmpActAllow,
        vec![
            refuse,
            rule(&["kill"], ScmpActKillProcess, &[]),
            rule(&["getpid"], ScmpActTrap, &[]),
            // fcntl(_, F_SETFL, O_NONBLOCK bit set) is logged.
            rule(
                &["fcntl"],
                ScmpActLog,
                &[
                    (1, libc::F_SETFL as u64, 0, ScmpCmpEq),
                    (2, 0o4000, 0o4000, ScmpCmpMaskedEq),
                ],
            ),
            // Two comparisons of one argument: either value matches (runc).
            rule(
                &["dup3"],
                ScmpActErrno,
                &[(2, 1, 0, ScmpCmpEq), (2, 2, 0, ScmpCmpEq)],
            ),
            rule(&["no_such_call"], ScmpActErrno, &[]),
        ],
    );
    let prog = program(&profile);
    assert_eq!(
        no_args(&prog, "mkdirat"),
        libc::SECCOMP_RET_ERRNO | libc::EROFS as u32
    );
    assert_eq!(no_args(&prog, "kill"), KILL);
    assert_eq!(no_args(&prog, "getpid"), libc::SECCOMP_RET_TRAP);
    assert_eq!(no_args(&prog, "read"), ALLOW);
    let fcntl = |a1, a2| verdict(&prog, "fcntl", [0, a1, a2, 0, 0, 0]);
    assert_eq!(fcntl(libc::F_SETFL as u64, 0o4002), libc::SECCOMP_RET_LOG);
    assert_eq!(fcntl(libc::F_SETFL as u64, 0o2), ALLOW);
    assert_eq!(fcntl(libc::F_GETFL as u64, 0o4000), ALLOW);
    let dup3 = |a2| verdict(&prog, "dup3", [0, 0, a2, 0, 0, 0]);
    assert_eq!(dup3(1), EPERM);
    assert_eq!(dup3(2), EPERM);
    assert_eq!(dup3(3), ALLOW);
    // A permissive default adds no ENOSYS for unknown numbers.
    let abi = Abi::native().unwrap();
    let far = Call {
        nr: 1000,
        arch: abi.audit_arch(),
        args: [0; 6],
    };
    assert_eq!(run(&prog, far).0, ALLOW);
}

#[test]
fn a_conditional_rule_is_tried_before_its_call_unconditional_one() {
    use LinuxSeccompAction::*;
    use LinuxSeccompOperator::*;
    let mut deny = rule(
        &["socket"],
        ScmpActErrno,
        &[(0, libc::AF_PACKET as u64, 0, ScmpCmpEq)],
    );
    deny.set_errno_ret(Some(libc::EACCES as u32));
    let profile = custom(
        ScmpActErrno,
        vec![rule(&["socket"], ScmpActAllow, &[]), deny],
    );
    let prog = program(&profile);
    assert_eq!(arg0(&prog, "socket", libc::AF_INET as u64), ALLOW);
    assert_eq!(
        arg0(&prog, "socket", libc::AF_PACKET as u64),
        libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
    );
}

#[test]
fn what_cannot_be_compiled_is_a_typed_error() {
    use LinuxSeccompAction::*;
    use LinuxSeccompOperator::*;
    let notify = custom(ScmpActAllow, vec![rule(&["read"], ScmpActNotify, &[])]);
    assert!(matches!(
        compile(&notify),
        Err(SeccompError::UnsupportedAction { .. })
    ));
    let seventh = custom(
        ScmpActAllow,
        vec![rule(&["read"], ScmpActErrno, &[(6, 0, 0, ScmpCmpEq)])],
    );
    assert!(matches!(
        compile(&seventh),
        Err(SeccompError::BadArgument { index: 6, .. })
    ));
    let twice = custom(
        ScmpActErrno,
        vec![
            rule(&["read"], ScmpActAllow, &[]),
            rule(&["read"], ScmpActKillProcess, &[]),
        ],
    );
    assert!(matches!(
        compile(&twice),
        Err(SeccompError::ConflictingActions { .. })
    ));
    let mut flagged = custom(ScmpActAllow, vec![]);
    flagged.set_flags(Some(vec![
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    ]));
    assert!(matches!(
        compile(&flagged),
        Err(SeccompError::UnsupportedOption { .. })
    ));
    // 4096 instructions at most: thousands of argument rules do not fit.
    let huge = custom(
        ScmpActAllow,
        (0..2000)
            .map(|i| rule(&["read"], ScmpActErrno, &[(0, i, 0, ScmpCmpEq)]))
            .collect(),
    );
    assert!(matches!(compile(&huge), Err(SeccompError::TooLarge { .. })));
}

#[test]
fn architectures_this_machine_cannot_run_are_ignored() {
    let mut p = custom(
        LinuxSeccompAction::ScmpActErrno,
        vec![rule(&["read"], LinuxSeccompAction::ScmpActAllow, &[])],
    );
    p.set_architectures(Some(vec![Arch::ScmpArchPpc64le, Arch::ScmpArchS390x]));
    let prog = program(&p);
    assert_eq!(no_args(&prog, "read"), ALLOW);
}

/// The kernel's static checks on a seccomp program (bpf_check_classic and
/// seccomp_check_filter): every jump lands inside, the last instruction
/// returns, loads read `seccomp_data` words.
fn assert_kernel_would_accept(prog: &[sock_filter]) {
    assert!(!prog.is_empty() && prog.len() <= 4096);
    for (pc, i) in prog.iter().enumerate() {
        let code = u32::from(i.code);
        let left = prog.len() - pc - 1;
        if code == libc::BPF_JMP | libc::BPF_JA {
            assert!((i.k as usize) < left, "ja at {pc} leaves the program");
        } else if code & 0x07 == libc::BPF_JMP {
            assert!(usize::from(i.jt.max(i.jf)) < left, "jump at {pc} leaves");
        } else if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
            assert!(i.k % 4 == 0 && i.k < 64, "load at {pc}");
        }
    }
    let last = &prog[prog.len() - 1];
    assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K);
}

#[test]
fn programs_pass_the_kernel_checks_and_load() {
    use LinuxSeccompAction::*;
    use LinuxSeccompOperator::*;
    let profiles = [
        default_profile(&caps(&[], &[])),
        default_profile(&caps(&["SYS_ADMIN", "SYS_PTRACE"], &[])),
        custom(
            ScmpActAllow,
            vec![rule(&["dup3"], ScmpActErrno, &[(2, 1, 0, ScmpCmpEq)])],
        ),
    ];
    for profile in &profiles {
        let prog = program(profile);
        assert_kernel_would_accept(&prog);
        // And the kernel itself, in a child: no_new_privs lets any user
        // load a filter.
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr().cast_mut().cast(),
        };
        // SAFETY: the child only makes system calls before _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: plain system calls on live memory, then _exit.
            unsafe {
                let ok = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                    && libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER,
                        &fprog as *const libc::sock_fprog as libc::c_ulong,
                        0,
                        0,
                    ) == 0;
                libc::_exit(if ok { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the kernel refused the program (status {status:#x})"
        );
    }
}
