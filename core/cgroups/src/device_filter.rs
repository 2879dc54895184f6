//! Device rules as a cgroup v2 device filter: the BPF program
//! (`BPF_PROG_TYPE_CGROUP_DEVICE`) that the kernel runs on every open and
//! mknod of a device node by a process of the cgroup, since v2 has no
//! `devices.allow` file. Pure: rules in, instructions out; loading and
//! attaching is `bpf.rs`'s job.
//!
//! The rules keep their v1 meaning. [`DevicePolicy`] replays them as the
//! v1 controller would (an `a` rule sets the default and clears the
//! exceptions, any other rule adds or removes an exception), starting, as
//! a new v1 cgroup does, from its parent's: with `BPF_F_ALLOW_MULTI` the
//! parents' programs run too, so "allow unless an exception says no" here
//! means "as the parents allow". The program then tests each exception in
//! turn and returns its verdict, or the default.
//!
//! The instruction sequence follows runc's (libcontainer/cgroups/devices/
//! devicefilter.go, itself after crun's ebpf.c), so runc's test vectors
//! check it; it differs in one place on purpose: a deny exception (in
//! allow-by-default mode) matches a request that asks for *any* of its
//! access bits, as the v1 kernel's partial match does, where runc's
//! matches only a request within them, and so lets `rw` through a `w`
//! deny.

use std::collections::BTreeMap;

use crate::devices::{DeviceKind, DeviceRule};
use crate::error::{CgroupError, Result};

/// `BPF_DEVCG_ACC_*`: the access asked for, in the high 16 bits of
/// `bpf_cgroup_dev_ctx.access_type`.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// `BPF_DEVCG_DEV_*`: the node type, in the low 16 bits.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`, so a
/// slice of them is the program `BPF_PROG_LOAD` takes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class, operation and source (`BPF_K` immediate or `BPF_X` register).
    pub code: u8,
    /// Destination and source registers, four bits each, in the order
    /// the C bit-field has on this target.
    pub regs: u8,
    /// Memory offset, or jump distance in instructions after the next.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}

// Opcode parts (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        #[cfg(target_endian = "little")]
        let regs = (src << 4) | (dst & 0xf);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | (src & 0xf);
        Self {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The destination register.
    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    /// The source register.
    pub fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }

    /// `dst = *(u32 *)(src + off)`
    fn load_word(dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }

    /// 32-bit `dst op= imm`.
    fn alu_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }

    /// 32-bit `dst = src`.
    fn mov_reg(dst: u8, src: u8) -> Self {
        Self::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }

    /// `if dst op imm goto next block` (the distance is filled in later).
    fn jump_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(BPF_JMP | op | BPF_K, dst, 0, 0, imm)
    }

    /// `if dst op src goto next block`.
    fn jump_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(BPF_JMP | op | BPF_X, dst, src, 0, 0)
    }

    fn exit() -> Self {
        Self::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    fn is_jump(&self) -> bool {
        self.code & 0x07 == BPF_JMP && self.code & 0xf0 != BPF_EXIT
    }
}

/// The node types a rule can name, in runc's order (`b` before `c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Block,
    Char,
}

/// What an exception covers: node type and numbers (`None`: any), ordered
/// as runc orders its rules (by major, minor, then type; any first).
type Key = (Option<u32>, Option<u32>, Node);

/// The effect of a list of device rules, as the v1 controller would leave
/// it: a default and the exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePolicy {
    /// What a device no exception covers gets.
    default_allow: bool,
    /// Exceptions to the default and their `BPF_DEVCG_ACC_*` bits.
    exceptions: BTreeMap<Key, i32>,
}

impl DevicePolicy {
    /// Replay `rules` in order. A rule that would remove access from part
    /// of a wildcard exception (`c *:* m` allowed, then `c 1:3 m` denied)
    /// is refused: the v1 kernel silently ignores it, which would leave the
    /// device open to someone who believes it closed.
    pub fn from_rules(rules: &[DeviceRule]) -> Result<DevicePolicy> {
        let mut policy = DevicePolicy {
            default_allow: true,
            exceptions: BTreeMap::new(),
        };
        for rule in rules {
            rule.validate()?;
            let node = match rule.kind {
                DeviceKind::All => {
                    policy.default_allow = rule.allow;
                    policy.exceptions.clear();
                    continue;
                }
                DeviceKind::Block => Node::Block,
                DeviceKind::Char => Node::Char,
            };
            let number = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
            let key = (number(rule.major), number(rule.minor), node);
            let access = access_bits(&rule.access);
            if rule.allow == policy.default_allow {
                policy.remove(key, access, rule)?;
            } else {
                *policy.exceptions.entry(key).or_insert(0) |= access;
            }
        }
        Ok(policy)
    }

    fn remove(&mut self, key: Key, access: i32, rule: &DeviceRule) -> Result<()> {
        let (major, minor, node) = key;
        for wider in [(None, minor, node), (major, None, node), (None, None, node)] {
            if wider != key && self.exceptions.get(&wider).is_some_and(|a| a & access != 0) {
                return Err(CgroupError::InvalidValue {
                    setting: "device rule",
                    value: rule.v1_line(),
                    reason: "it takes access away from part of an earlier wildcard rule, \
                             which the kernel cannot do; narrow the wildcard rule instead"
                        .to_owned(),
                });
            }
        }
        if let Some(left) = self.exceptions.get_mut(&key) {
            *left &= !access;
            if *left == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }

    /// Whether every device is allowed (nothing for a program to enforce).
    pub fn allows_all(&self) -> bool {
        self.default_allow && self.exceptions.is_empty()
    }

    /// Whether `access` (some of `r`, `w`, `m`) to the node is allowed, as
    /// the v1 kernel decides it: by default, unless an exception covers
    /// the request whole (allow exceptions) or touches any of it (deny
    /// exceptions). The program must agree with this on every request.
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: &str) -> bool {
        let node = match kind {
            DeviceKind::Block => Node::Block,
            DeviceKind::Char => Node::Char,
            DeviceKind::All => return self.allows_all(),
        };
        let want = access_bits(access);
        let covers = |(&(ma, mi, n), &bits): (&Key, &i32)| {
            n == node
                && ma.is_none_or(|m| m == major)
                && mi.is_none_or(|m| m == minor)
                && if self.default_allow {
                    want & bits != 0
                } else {
                    want & !bits == 0
                }
        };
        let excepted = self.exceptions.iter().any(covers);
        self.default_allow != excepted
    }

    /// The device filter program. Registers: r1 is the context
    /// (`struct bpf_cgroup_dev_ctx { u32 access_type, major, minor; }`),
    /// r2 gets the node type, r3 the access asked for, r4 the major and r5
    /// the minor; each exception is a block that jumps to the next one
    /// unless it matches, and returns its verdict if it does.
    pub fn program(&self) -> Vec<Insn> {
        let (r0, r1, r2, r3, r4, r5) = (0, 1, 2, 3, 4, 5);
        let mut insns = vec![
            Insn::load_word(r2, r1, 0),
            Insn::alu_imm(BPF_AND, r2, 0xffff),
            Insn::load_word(r3, r1, 0),
            Insn::alu_imm(BPF_RSH, r3, 16),
            Insn::load_word(r4, r1, 4),
            Insn::load_word(r5, r1, 8),
        ];
        let verdict = |allow: bool| [Insn::alu_imm(BPF_MOV, r0, i32::from(allow)), Insn::exit()];
        for (&(major, minor, node), &access) in &self.exceptions {
            // Linux majors have 12 bits and minors 20: a number beyond
            // i32 (which the 64-bit compare would sign-extend) names no
            // device, so its block could never match.
            let (Ok(major), Ok(minor)) = (
                major.map(i32::try_from).transpose(),
                minor.map(i32::try_from).transpose(),
            ) else {
                continue;
            };
            let start = insns.len();
            let node = match node {
                Node::Block => DEV_BLOCK,
                Node::Char => DEV_CHAR,
            };
            insns.push(Insn::jump_imm(BPF_JNE, r2, node));
            if access != ACC_ALL {
                insns.push(Insn::mov_reg(r1, r3));
                insns.push(Insn::alu_imm(BPF_AND, r1, access));
                insns.push(if self.default_allow {
                    // Deny: the request touches the exception's access.
                    Insn::jump_imm(BPF_JEQ, r1, 0)
                } else {
                    // Allow: the exception's access holds all of the request.
                    Insn::jump_reg(BPF_JNE, r1, r3)
                });
            }
            if let Some(major) = major {
                insns.push(Insn::jump_imm(BPF_JNE, r4, major));
            }
            if let Some(minor) = minor {
                insns.push(Insn::jump_imm(BPF_JNE, r5, minor));
            }
            insns.extend(verdict(!self.default_allow));
            // Every jump in the block goes to the first instruction after it.
            let next = insns.len();
            for (pc, insn) in insns.iter_mut().enumerate().skip(start) {
                if insn.is_jump() {
                    // A block is at most 9 instructions long.
                    insn.off = i16::try_from(next - pc - 1).unwrap_or(i16::MAX);
                }
            }
        }
        insns.extend(verdict(self.default_allow));
        insns
    }
}

/// `BPF_DEVCG_ACC_*` bits of an access string (validated: some of r, w, m).
fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |bits, c| {
        bits | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

#[cfg(test)]
#[path = "device_filter_tests.rs"]
mod tests;
