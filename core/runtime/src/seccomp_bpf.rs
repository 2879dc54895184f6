//! Laying a seccomp filter out as one classic-BPF program: dispatch on the
//! architecture, then a binary search over system call numbers.
//!
//! seccompiler compiles each argument rule; the layout around the rules is
//! ours because seccompiler's own filter compares the number against every
//! listed call in turn (a 350-call allow-list would cost ~700 instructions
//! for a call near the end of the table, on every system call), allows one
//! match action per filter and one architecture. Here consecutive numbers
//! with the same answer merge into ranges, so Docker's profile is ~100
//! ranges and any call is decided after ~8 comparisons, with x86_64, i386
//! and x32 calls each looked up in their own table.

use std::collections::HashMap;

use seccompiler::{BpfProgram, SeccompRule, sock_filter};

use crate::syscall_table::{Abi, X32_SYSCALL_BIT};

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub(crate) const MAX_LEN: usize = 4096;

/// What one system call gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A `SECCOMP_RET_*` value.
    Ret(u32),
    /// Its argument rules: an index into the blocks.
    Rules(usize),
}

/// The argument rules of one call, tried in order: the first that matches
/// returns its value, and `fallback` is returned when none does.
pub(crate) struct Block {
    pub rules: Vec<(SeccompRule, u32)>,
    pub fallback: u32,
}

/// One ABI's part of a filter.
pub(crate) struct AbiFilter {
    pub abi: Abi,
    /// By `seccomp_data.nr`, ascending; numbers not here get `default`.
    pub calls: Vec<(u32, Outcome)>,
    pub default: u32,
    /// Numbers above this get `enosys` instead of `default`.
    pub newer_than: Option<(u32, u32)>,
}

enum Op {
    Insn(sock_filter),
    /// An unconditional jump to a mark, resolved once the layout is known.
    Goto(Label),
    Mark(Label),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    Arch(u32),
    X32,
    Block(usize),
}

fn stmt(code: u16, k: u32) -> Op {
    Op::Insn(sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    })
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Op {
    Op::Insn(sock_filter { code, jt, jf, k })
}

/// The filter's ranges of numbers `[start, next start)` with their
/// outcome, from 0 up; neighbours never share an outcome.
fn ranges(f: &AbiFilter) -> Vec<(u32, Outcome)> {
    fn push(v: &mut Vec<(u32, Outcome)>, start: u32, outcome: Outcome) {
        if let Some(last) = v.last_mut()
            && last.0 == start
        {
            last.1 = outcome;
            if v.len() >= 2 && v[v.len() - 2].1 == v[v.len() - 1].1 {
                v.pop();
            }
            return;
        }
        if v.last().map(|l| &l.1) != Some(&outcome) {
            v.push((start, outcome));
        }
    }
    let mut v = vec![(0, Outcome::Ret(f.default))];
    for (nr, outcome) in &f.calls {
        push(&mut v, *nr, outcome.clone());
        if let Some(next) = nr.checked_add(1) {
            push(&mut v, next, Outcome::Ret(f.default));
        }
    }
    if let Some((last, enosys)) = f.newer_than
        && let Some(next) = last.checked_add(1)
    {
        push(&mut v, next, Outcome::Ret(enosys));
    }
    v
}

/// Binary search over `ranges` (the first starting at 0), with the call
/// number in the accumulator. The left half is laid out first, so a
/// "greater or equal" test jumps over it to the right half.
fn search(ranges: &[(u32, Outcome)], out: &mut Vec<Op>) {
    if let [(_, outcome)] = ranges {
        out.push(match outcome {
            Outcome::Ret(k) => stmt(RET, *k),
            Outcome::Rules(i) => Op::Goto(Label::Block(*i)),
        });
        return;
    }
    let mid = ranges.len() / 2;
    let left = search_len(&ranges[..mid]);
    match u8::try_from(left) {
        Ok(skip) => out.push(jump(JGE, ranges[mid].0, skip, 0)),
        Err(_) => {
            // Too far for a conditional jump: through an unconditional one.
            out.push(jump(JGE, ranges[mid].0, 0, 1));
            out.push(stmt(JA, left as u32));
        }
    }
    search(&ranges[..mid], out);
    search(&ranges[mid..], out);
}

/// The number of instructions [`search`] lays out for `ranges`.
fn search_len(ranges: &[(u32, Outcome)]) -> usize {
    if ranges.len() <= 1 {
        return ranges.len();
    }
    let mid = ranges.len() / 2;
    let left = search_len(&ranges[..mid]);
    let test = if left <= usize::from(u8::MAX) { 1 } else { 2 };
    test + left + search_len(&ranges[mid..])
}

/// Why a layout failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LayoutError {
    /// The program has this many instructions, over [`MAX_LEN`].
    TooLong(usize),
    /// A bug here, or a seccompiler that lays rules out differently.
    Internal(&'static str),
}

/// One program for `filters` (at most one per ABI, the native one first);
/// a call through any other architecture returns `bad_arch`.
pub(crate) fn assemble(
    filters: &[AbiFilter],
    blocks: Vec<Block>,
    bad_arch: u32,
) -> Result<BpfProgram, LayoutError> {
    let by_abi = |abi| filters.iter().find(|f| f.abi == abi);
    let mut arches: Vec<u32> = Vec::new();
    for f in filters {
        if !arches.contains(&f.abi.audit_arch()) {
            arches.push(f.abi.audit_arch());
        }
    }

    let mut ops = vec![stmt(LD_W_ABS, DATA_ARCH)];
    for arch in &arches {
        ops.push(jump(JEQ, *arch, 0, 1));
        ops.push(Op::Goto(Label::Arch(*arch)));
    }
    ops.push(stmt(RET, bad_arch));

    for arch in &arches {
        ops.push(Op::Mark(Label::Arch(*arch)));
        ops.push(stmt(LD_W_ABS, DATA_NR));
        if *arch == Abi::X86_64.audit_arch() {
            // x32 shares x86_64's architecture; its numbers carry bit 30.
            let (native, x32) = (by_abi(Abi::X86_64), by_abi(Abi::X32));
            match (native, x32) {
                (Some(native), Some(x32)) => {
                    ops.push(jump(JSET, X32_SYSCALL_BIT, 0, 1));
                    ops.push(Op::Goto(Label::X32));
                    search(&ranges(native), &mut ops);
                    ops.push(Op::Mark(Label::X32));
                    search(&ranges(x32), &mut ops);
                }
                (Some(native), None) => {
                    ops.push(jump(JSET, X32_SYSCALL_BIT, 0, 1));
                    ops.push(stmt(RET, bad_arch));
                    search(&ranges(native), &mut ops);
                }
                (None, Some(x32)) => {
                    ops.push(jump(JSET, X32_SYSCALL_BIT, 1, 0));
                    ops.push(stmt(RET, bad_arch));
                    search(&ranges(x32), &mut ops);
                }
                (None, None) => ops.push(stmt(RET, bad_arch)),
            }
        } else if let Some(f) = filters.iter().find(|f| f.abi.audit_arch() == *arch) {
            search(&ranges(f), &mut ops);
        }
    }

    for (i, block) in blocks.into_iter().enumerate() {
        ops.push(Op::Mark(Label::Block(i)));
        for (rule, ret) in block.rules {
            // A rule falls through when it matches and jumps past the
            // instruction after it when it does not. seccompiler opens it
            // with "JA 1; JA <past this call's rules>" for its own layout,
            // where the second is the way in for other calls; here a rule
            // is entered from the top, and that jump would point past the
            // end, which the kernel refuses even when unreachable.
            let code: BpfProgram = rule.into();
            match code.get(..2) {
                Some([enter, skip]) if enter.code == JA && enter.k == 1 && skip.code == JA => {}
                _ => return Err(LayoutError::Internal("seccompiler's rule prologue changed")),
            }
            ops.extend(code.into_iter().skip(2).map(Op::Insn));
            ops.push(stmt(RET, ret));
        }
        ops.push(stmt(RET, block.fallback));
    }
    resolve(ops)
}

/// Turns marks into offsets: every jump to a mark goes forward.
fn resolve(ops: Vec<Op>) -> Result<BpfProgram, LayoutError> {
    let mut at = HashMap::new();
    let mut len = 0usize;
    for op in &ops {
        match op {
            Op::Mark(l) => {
                at.insert(*l, len);
            }
            Op::Insn(_) | Op::Goto(_) => len += 1,
        }
    }
    if len > MAX_LEN {
        return Err(LayoutError::TooLong(len));
    }
    let mut out = Vec::with_capacity(len);
    for op in ops {
        match op {
            Op::Mark(_) => {}
            Op::Insn(i) => out.push(i),
            Op::Goto(l) => {
                let target = at
                    .get(&l)
                    .copied()
                    .ok_or(LayoutError::Internal("a jump to a place never laid out"))?;
                // BPF only jumps forward, and every mark follows its jumps.
                let skip = target
                    .checked_sub(out.len() + 1)
                    .ok_or(LayoutError::Internal("a jump backwards"))?;
                out.push(sock_filter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: skip as u32,
                });
            }
        }
    }
    Ok(out)
}
