//! Seccomp: Docker's default profile ([`default_profile`]) and the
//! compilation of any OCI profile to the BPF program the container's init
//! loads ([`compile`]).
//!
//! Compilation follows what runc does with libseccomp, so a profile means
//! here what it means under Docker:
//! - names this machine's ABIs lack are skipped, per ABI;
//! - a call with no matching rule gets the default action (`errnoRet`
//!   defaulting to EPERM, for the default as for each rule);
//! - a call's argument rules are tried before its unconditional rule;
//!   comparisons in one rule must all hold, except that a rule comparing
//!   one argument twice is split into one rule per comparison, as runc does;
//! - when the default refuses, calls numbered above every call the profile
//!   names get ENOSYS (runc's "-ENOSYS stub"), so that a program can fall
//!   back from a call newer than the profile instead of failing on EPERM;
//! - on x86_64 the filter also covers the i386 and x32 ABIs the profile
//!   lists, and kills a process that calls through any other.
//!
//! ```
//! # fn demo() -> Result<(), berth_runtime::RuntimeError> {
//! use berth_runtime::{DEFAULT_CAPABILITIES, parse_capability, seccomp};
//! let caps = DEFAULT_CAPABILITIES.iter().map(|c| parse_capability(c)).collect::<Result<_, _>>()?;
//! let program = seccomp::compile(&seccomp::default_profile(&caps))?;
//! assert!(!program.is_empty());
//! # Ok(()) }
//! ```

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
};

use crate::seccomp_bpf::{self, AbiFilter, Block, LayoutError, Outcome};
pub use crate::seccomp_profile::default_profile;
use crate::syscall_table::Abi;

/// Why a profile cannot be compiled for this machine.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "{action:?} for {syscall} is not supported (berth has no seccomp user-space \
         listener): use SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS or SCMP_ACT_TRAP"
    )]
    UnsupportedAction {
        action: LinuxSeccompAction,
        /// The call's name, or "the default action".
        syscall: String,
    },
    #[error("seccomp flags and listeners are not supported: remove {what} from the profile")]
    UnsupportedOption { what: &'static str },
    #[error(
        "architecture {arch:?} runs on this machine but berth has no system call table \
         for it: remove it from the profile's architectures"
    )]
    UnsupportedArch { arch: Arch },
    #[error(
        "this machine's architecture ({arch}) has no system call table in berth: \
         run with --security-opt seccomp=unconfined"
    )]
    UnknownHostArch { arch: &'static str },
    #[error("argument {index} of {syscall}: {reason}")]
    BadArgument {
        syscall: String,
        index: usize,
        reason: String,
    },
    #[error("{syscall} has two unconditional rules with different actions: keep one of them")]
    ConflictingActions { syscall: String },
    #[error(
        "the profile compiles to {len} BPF instructions, over the kernel's limit of {}: \
         merge or drop argument rules",
        seccomp_bpf::MAX_LEN
    )]
    TooLarge { len: usize },
    #[error(
        "laying out the filter failed ({reason}), a bug in berth: report it, and \
         run with --security-opt seccomp=unconfined meanwhile"
    )]
    Layout { reason: &'static str },
}

/// The `SECCOMP_RET_*` value of `action`, as runc maps OCI actions.
fn ret(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    syscall: &dyn Fn() -> String,
) -> Result<u32, SeccompError> {
    let eperm = libc::EPERM as u32;
    let a = match action {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(eperm)),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(eperm)),
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction {
                action,
                syscall: syscall(),
            });
        }
    };
    Ok(a.into())
}

/// One comparison, or `None` when it can never hold (libseccomp's
/// MASKED_EQ compares `arg & value` with `valueTwo` as given).
fn condition(
    arg: &LinuxSeccompArg,
    len: SeccompCmpArgLen,
    syscall: &dyn Fn() -> String,
) -> Result<Option<SeccompCondition>, SeccompError> {
    let bad = |reason: String| SeccompError::BadArgument {
        syscall: syscall(),
        index: arg.index(),
        reason,
    };
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| bad("system calls have arguments 0 to 5".into()))?;
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let (mask, want) = (arg.value(), arg.value_two().unwrap_or(0));
            if want & !mask != 0 {
                return Ok(None);
            }
            (SeccompCmpOp::MaskedEq(mask), want)
        }
    };
    if len == SeccompCmpArgLen::Dword && u32::try_from(value).is_err() {
        return Err(bad(format!(
            "{value:#x} does not fit the 32-bit arguments of a 32-bit ABI"
        )));
    }
    SeccompCondition::new(index, len, op, value)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// When an OCI entry applies to a call.
enum When {
    Always,
    /// If any of these rules matches.
    Rules(Vec<SeccompRule>),
    /// Its comparisons can never all hold.
    Never,
}

/// When an entry with `args` applies, runc's way: all comparisons must
/// hold, unless one argument is compared twice, then any one of them.
fn when(
    args: &[LinuxSeccompArg],
    len: SeccompCmpArgLen,
    syscall: &dyn Fn() -> String,
) -> Result<When, SeccompError> {
    if args.is_empty() {
        return Ok(When::Always);
    }
    let to_rule = |conds: Vec<SeccompCondition>| {
        SeccompRule::new(conds).map_err(|e| SeccompError::BadArgument {
            syscall: syscall(),
            index: 0,
            reason: e.to_string(),
        })
    };
    let mut seen = [false; 6];
    // An index out of range is reported by `condition` below.
    let repeated = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index().min(5)], true));
    let mut rules = Vec::new();
    if repeated {
        for arg in args {
            if let Some(c) = condition(arg, len.clone(), syscall)? {
                rules.push(to_rule(vec![c])?);
            }
        }
    } else {
        let mut conds = Vec::with_capacity(args.len());
        for arg in args {
            match condition(arg, len.clone(), syscall)? {
                Some(c) => conds.push(c),
                None => return Ok(When::Never),
            }
        }
        rules.push(to_rule(conds)?);
    }
    Ok(if rules.is_empty() {
        When::Never
    } else {
        When::Rules(rules)
    })
}

/// The ABIs the program handles: this machine's, then those the profile
/// lists that its kernel also runs.
fn abis(profile: &LinuxSeccomp) -> Result<Vec<Abi>, SeccompError> {
    let native = Abi::native().ok_or(SeccompError::UnknownHostArch {
        arch: std::env::consts::ARCH,
    })?;
    let mut out = vec![native];
    for arch in profile.architectures().iter().flatten() {
        if !Abi::runs_here(*arch) {
            // No call on this machine comes from it.
            continue;
        }
        let abi = Abi::of(*arch).ok_or(SeccompError::UnsupportedArch { arch: *arch })?;
        if !out.contains(&abi) {
            out.push(abi);
        }
    }
    Ok(out)
}

/// An OCI entry, ready for any ABI.
struct Entry<'a> {
    names: &'a [String],
    act: u32,
    /// For 64-bit arguments, then (if some ABI needs it) 32-bit ones.
    rules_by_width: Vec<When>,
}

/// What one call gets, before layout.
#[derive(Default)]
struct Calls {
    conditional: Vec<(SeccompRule, u32)>,
    unconditional: Option<u32>,
}

/// The part of the filter for `abi`; argument rules go to `blocks`.
/// `newer_than`: what calls above the last one the profile names get.
fn abi_filter(
    abi: Abi,
    entries: &[Entry<'_>],
    default: u32,
    newer_than: Option<u32>,
    blocks: &mut Vec<Block>,
) -> Result<AbiFilter, SeccompError> {
    let width = usize::from(abi.is_32bit());
    let base = abi.number_base();
    // Indexed by number less `base`: numbers are dense, below `end`.
    let mut calls: Vec<Calls> = Vec::new();
    calls.resize_with(abi.end() as usize, Calls::default);
    let mut last = None;
    for entry in entries {
        for name in entry.names {
            let Some(nr) = abi.number(name) else {
                continue;
            };
            last = last.max(Some(nr));
            let Some(slot) = calls.get_mut((nr - base) as usize) else {
                continue;
            };
            match &entry.rules_by_width[width] {
                When::Always => match slot.unconditional {
                    Some(prev) if prev != entry.act => {
                        return Err(SeccompError::ConflictingActions {
                            syscall: name.clone(),
                        });
                    }
                    _ => slot.unconditional = Some(entry.act),
                },
                When::Rules(rules) => slot
                    .conditional
                    .extend(rules.iter().map(|r| (r.clone(), entry.act))),
                When::Never => {}
            }
        }
    }
    let mut outcomes = Vec::new();
    for (i, mut c) in calls.into_iter().enumerate() {
        if c.unconditional.is_none() && c.conditional.is_empty() {
            continue;
        }
        let fallback = c.unconditional.unwrap_or(default);
        // Trailing rules that answer like the fallback change nothing.
        while c.conditional.last().is_some_and(|(_, a)| *a == fallback) {
            c.conditional.pop();
        }
        let outcome = if c.conditional.is_empty() {
            Outcome::Ret(fallback)
        } else {
            blocks.push(Block {
                rules: c.conditional,
                fallback,
            });
            Outcome::Rules(blocks.len() - 1)
        };
        outcomes.push((base + i as u32, outcome));
    }
    Ok(AbiFilter {
        abi,
        calls: outcomes,
        default,
        newer_than: last.zip(newer_than),
    })
}

/// Compile `profile` for this machine into one BPF program (in a `Vec`, so
/// that an empty list means "no filter" to the caller).
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SeccompError> {
    if profile.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(SeccompError::UnsupportedOption { what: "flags" });
    }
    if profile.listener_path().is_some() {
        return Err(SeccompError::UnsupportedOption {
            what: "listenerPath",
        });
    }
    let default = ret(
        profile.default_action(),
        profile.default_errno_ret(),
        &|| "the default action".into(),
    )?;
    let enosys = u32::from(SeccompAction::Errno(libc::ENOSYS as u32));
    // runc adds no stub when the default lets calls through, or already
    // says ENOSYS.
    let stub = !matches!(
        profile.default_action(),
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    ) && default != enosys;

    let abis = abis(profile)?;
    let widths: &[SeccompCmpArgLen] = if abis.iter().any(|a| a.is_32bit()) {
        &[SeccompCmpArgLen::Qword, SeccompCmpArgLen::Dword]
    } else {
        &[SeccompCmpArgLen::Qword]
    };
    // Each entry's answer and rules, once for all ABIs.
    let mut entries = Vec::new();
    for sc in profile.syscalls().iter().flatten() {
        let what = || sc.names().join(",");
        let act = ret(sc.action(), sc.errno_ret(), &what)?;
        let mut rules_by_width = Vec::with_capacity(widths.len());
        for len in widths {
            let args = sc.args().as_deref().unwrap_or_default();
            rules_by_width.push(when(args, len.clone(), &what)?);
        }
        entries.push(Entry {
            names: sc.names(),
            act,
            rules_by_width,
        });
    }

    let mut blocks = Vec::new();
    let filters = abis
        .into_iter()
        .map(|abi| {
            let newer_than = stub.then_some(enosys);
            abi_filter(abi, &entries, default, newer_than, &mut blocks)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bad_arch = u32::from(SeccompAction::KillProcess);
    match seccomp_bpf::assemble(&filters, blocks, bad_arch) {
        Ok(program) => Ok(vec![program]),
        Err(LayoutError::TooLong(len)) => Err(SeccompError::TooLarge { len }),
        Err(LayoutError::Internal(reason)) => Err(SeccompError::Layout { reason }),
    }
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
