#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;
use crate::spec::{DEFAULT_CAPABILITIES, parse_capability};

fn caps(extra: &[&str]) -> HashSet<Capability> {
    DEFAULT_CAPABILITIES
        .iter()
        .chain(extra)
        .map(|c| parse_capability(c).unwrap())
        .collect()
}

/// The entries of `profile` that name `name`.
fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names().iter().any(|n| n == name))
        .collect()
}

fn unconditionally_allowed(profile: &LinuxSeccomp, name: &str) -> bool {
    rules_for(profile, name).iter().any(|s| {
        s.action() == LinuxSeccompAction::ScmpActAllow
            && s.args().as_ref().is_none_or(|a| a.is_empty())
    })
}

#[test]
fn default_profile_is_an_allow_list_refusing_with_eperm() {
    let p = default_profile(&caps(&[]));
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
    }
    for name in [
        "read",
        "execve",
        "clock_nanosleep",
        "rseq",
        "statx",
        "ptrace",
    ] {
        assert!(unconditionally_allowed(&p, name), "{name}");
    }
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "kcmp",
        "reboot",
        "syslog",
        "bpf",
        "acct",
        "swapon",
        "keyctl",
        "io_uring_setup",
        "open_by_handle_at",
    ] {
        assert!(!unconditionally_allowed(&p, name), "{name}");
    }
    // As JSON, what `berth inspect` and the bundle show.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(json["defaultErrnoRet"], 1);
}

#[test]
fn argument_rules_match_moby() {
    let p = default_profile(&caps(&[]));
    let clone = rules_for(&p, "clone");
    assert_eq!(clone.len(), 1, "only the flags-checked clone");
    let args = clone[0].args().clone().unwrap();
    assert_eq!(args.len(), 1);
    assert_eq!(args[0].index(), 0);
    assert_eq!(args[0].value(), 0x7E02_0000);
    assert_eq!(args[0].value_two(), Some(0));
    assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);

    let clone3 = rules_for(&p, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));

    let socket = rules_for(&p, "socket");
    assert_eq!(socket.len(), 1);
    let arg = socket[0].args().clone().unwrap()[0];
    assert_eq!(
        (arg.value(), arg.op()),
        (40, LinuxSeccompOperator::ScmpCmpNe)
    );

    let personas: Vec<u64> = rules_for(&p, "personality")
        .iter()
        .map(|s| s.args().clone().unwrap()[0].value())
        .collect();
    assert_eq!(personas, [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff]);
}

#[test]
fn sys_admin_opens_namespace_and_mount_calls() {
    let p = default_profile(&caps(&["SYS_ADMIN"]));
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "sethostname",
        "fsmount",
        "bpf",
        "perf_event_open",
        "lsm_get_self_attr",
    ] {
        assert!(unconditionally_allowed(&p, name), "{name}");
    }
    // No ENOSYS for clone3 and no flag check on clone any more.
    assert!(
        rules_for(&p, "clone3")
            .iter()
            .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
    );
    assert!(rules_for(&p, "clone").iter().all(|s| s.args().is_none()));
}

#[test]
fn sys_ptrace_and_others_open_theirs() {
    let p = default_profile(&caps(&["SYS_PTRACE"]));
    for name in ["kcmp", "process_madvise", "pidfd_getfd", "process_vm_readv"] {
        assert!(unconditionally_allowed(&p, name), "{name}");
    }
    assert!(!unconditionally_allowed(&p, "mount"));
    let p = default_profile(&caps(&[
        "SYS_MODULE",
        "SYS_TIME",
        "PERFMON",
        "DAC_READ_SEARCH",
    ]));
    for name in [
        "init_module",
        "finit_module",
        "clock_settime",
        "perf_event_open",
        "open_by_handle_at",
    ] {
        assert!(unconditionally_allowed(&p, name), "{name}");
    }
}

#[test]
fn every_name_is_a_real_system_call() {
    // Calls of architectures we have no table for (ARM, PowerPC, s390).
    let foreign = [
        "arm_fadvise64_64",
        "arm_sync_file_range",
        "breakpoint",
        "cacheflush",
        "set_tls",
        "swapcontext",
        "sync_file_range2",
        "s390_pci_mmio_read",
        "s390_pci_mmio_write",
        "s390_runtime_instr",
        // Only on architectures whose socketcall never got split up.
        "recv",
        "send",
    ];
    let abis = [Abi::X86_64, Abi::X86, Abi::X32, Abi::Aarch64, Abi::Riscv64];
    let unknown: Vec<&str> = PROFILE
        .iter()
        .flat_map(|e| e.names.iter().copied())
        .filter(|n| !foreign.contains(n))
        .filter(|n| abis.iter().all(|abi| abi.number(n).is_none()))
        .collect();
    assert!(
        unknown.is_empty(),
        "typos or missing table entries: {unknown:?}"
    );
}

#[test]
fn kernel_version_is_read() {
    let (major, _) = kernel_version().unwrap();
    assert!(major >= 4);
}
