use super::*;
use crate::devices::{all_devices, docker_default};

fn rule(
    allow: bool,
    kind: DeviceKind,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> DeviceRule {
    DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.to_owned(),
    }
}

fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    DevicePolicy::from_rules(rules).unwrap().program()
}

/// The program as cilium/ebpf prints it (the form of runc's test vectors),
/// with jump distances as numbers.
fn disassemble(insns: &[Insn]) -> String {
    let r = |n: u8| format!("r{n}");
    let lines: Vec<String> = insns
        .iter()
        .map(|i| {
            let (dst, src, off, imm) = (r(i.dst()), r(i.src()), i.off, i.imm);
            match i.code {
                0x61 => format!("LdXMemW dst: {dst} src: {src} off: {off} imm: {imm}"),
                0x54 => format!("AndImm32 dst: {dst} imm: {imm}"),
                0x74 => format!("RShImm32 dst: {dst} imm: {imm}"),
                0xb4 => format!("MovImm32 dst: {dst} imm: {imm}"),
                0xbc => format!("MovReg32 dst: {dst} src: {src}"),
                0x55 => format!("JNEImm dst: {dst} off: {off} imm: {imm}"),
                0x5d => format!("JNEReg dst: {dst} off: {off} src: {src}"),
                0x15 => format!("JEqImm dst: {dst} off: {off} imm: {imm}"),
                0x95 => "Exit".to_owned(),
                code => format!("unknown opcode {code:#x}"),
            }
        })
        .collect();
    lines.join("\n")
}

/// A runc test vector in the same form: comments and labels dropped, the
/// instruction numbers dropped, and each `off: -1 … <block-N>` replaced by
/// the distance to block N's first instruction.
fn resolve(listing: &str) -> String {
    let mut labels = std::collections::HashMap::new();
    let mut insns = Vec::new();
    for line in listing.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if let Some(label) = line.strip_suffix(':') {
            labels.insert(label.to_owned(), insns.len());
            continue;
        }
        let (_, insn) = line.split_once(": ").unwrap();
        insns.push(insn.to_owned());
    }
    let resolved: Vec<String> = insns
        .iter()
        .enumerate()
        .map(|(pc, insn)| match insn.split_once(" <") {
            Some((body, label)) => {
                let target = labels[label.trim_end_matches('>')];
                let off = target as i64 - pc as i64 - 1;
                body.replace("off: -1", &format!("off: {off}"))
            }
            None => insn.clone(),
        })
        .collect();
    resolved.join("\n")
}

// The vectors below are copied from runc's
// libcontainer/cgroups/devices/devicefilter_test.go
// (https://github.com/opencontainers/runc), Copyright The runc Authors,
// licensed under the Apache License, Version 2.0.

const RUNC_PROLOGUE: &str = "
        0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
        1: AndImm32 dst: r2 imm: 65535
        2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
        3: RShImm32 dst: r3 imm: 16
        4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
        5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
";

/// runc's TestDeviceFilter_BuiltInAllowList.
const RUNC_BUILT_IN_ALLOW_LIST: &str = "
block-0:
// (b, wildcard, wildcard, m, true)
        6: JNEImm dst: r2 off: -1 imm: 1 <block-1>
        7: MovReg32 dst: r1 src: r3
        8: AndImm32 dst: r1 imm: 1
        9: JNEReg dst: r1 off: -1 src: r3 <block-1>
        10: MovImm32 dst: r0 imm: 1
        11: Exit
block-1:
// (c, wildcard, wildcard, m, true)
        12: JNEImm dst: r2 off: -1 imm: 2 <block-2>
        13: MovReg32 dst: r1 src: r3
        14: AndImm32 dst: r1 imm: 1
        15: JNEReg dst: r1 off: -1 src: r3 <block-2>
        16: MovImm32 dst: r0 imm: 1
        17: Exit
block-2:
        18: JNEImm dst: r2 off: -1 imm: 2 <block-3>
        19: JNEImm dst: r4 off: -1 imm: 1 <block-3>
        20: JNEImm dst: r5 off: -1 imm: 3 <block-3>
        21: MovImm32 dst: r0 imm: 1
        22: Exit
block-3:
        23: JNEImm dst: r2 off: -1 imm: 2 <block-4>
        24: JNEImm dst: r4 off: -1 imm: 1 <block-4>
        25: JNEImm dst: r5 off: -1 imm: 5 <block-4>
        26: MovImm32 dst: r0 imm: 1
        27: Exit
block-4:
        28: JNEImm dst: r2 off: -1 imm: 2 <block-5>
        29: JNEImm dst: r4 off: -1 imm: 1 <block-5>
        30: JNEImm dst: r5 off: -1 imm: 7 <block-5>
        31: MovImm32 dst: r0 imm: 1
        32: Exit
block-5:
        33: JNEImm dst: r2 off: -1 imm: 2 <block-6>
        34: JNEImm dst: r4 off: -1 imm: 1 <block-6>
        35: JNEImm dst: r5 off: -1 imm: 8 <block-6>
        36: MovImm32 dst: r0 imm: 1
        37: Exit
block-6:
        38: JNEImm dst: r2 off: -1 imm: 2 <block-7>
        39: JNEImm dst: r4 off: -1 imm: 1 <block-7>
        40: JNEImm dst: r5 off: -1 imm: 9 <block-7>
        41: MovImm32 dst: r0 imm: 1
        42: Exit
block-7:
        43: JNEImm dst: r2 off: -1 imm: 2 <block-8>
        44: JNEImm dst: r4 off: -1 imm: 5 <block-8>
        45: JNEImm dst: r5 off: -1 imm: 0 <block-8>
        46: MovImm32 dst: r0 imm: 1
        47: Exit
block-8:
        48: JNEImm dst: r2 off: -1 imm: 2 <block-9>
        49: JNEImm dst: r4 off: -1 imm: 5 <block-9>
        50: JNEImm dst: r5 off: -1 imm: 2 <block-9>
        51: MovImm32 dst: r0 imm: 1
        52: Exit
block-9:
// tuntap (c, 10, 200, rwm, true)
        53: JNEImm dst: r2 off: -1 imm: 2 <block-10>
        54: JNEImm dst: r4 off: -1 imm: 10 <block-10>
        55: JNEImm dst: r5 off: -1 imm: 200 <block-10>
        56: MovImm32 dst: r0 imm: 1
        57: Exit
block-10:
// /dev/pts (c, 136, wildcard, rwm, true)
        58: JNEImm dst: r2 off: -1 imm: 2 <block-11>
        59: JNEImm dst: r4 off: -1 imm: 136 <block-11>
        60: MovImm32 dst: r0 imm: 1
        61: Exit
block-11:
        62: MovImm32 dst: r0 imm: 0
        63: Exit
";

/// runc's TestDeviceFilter_Privileged.
const RUNC_PRIVILEGED: &str = "
block-0:
// return 1 (accept)
        6: MovImm32 dst: r0 imm: 1
        7: Exit
";

/// runc's TestDeviceFilter_PrivilegedExceptSingleDevice, and the result
/// of its TestDeviceFilter_Weird with minor 2 for 0.
const RUNC_PRIVILEGED_EXCEPT_ONE: &str = "
block-0:
// return 0 (reject) if type==b && major == 8 && minor == 0
         6: JNEImm dst: r2 off: -1 imm: 1 <block-1>
         7: JNEImm dst: r4 off: -1 imm: 8 <block-1>
         8: JNEImm dst: r5 off: -1 imm: 0 <block-1>
         9: MovImm32 dst: r0 imm: 0
        10: Exit
block-1:
// return 1 (accept)
        11: MovImm32 dst: r0 imm: 1
        12: Exit
";

fn assert_runc(rules: &[DeviceRule], body: &str) {
    let want = resolve(&format!("{RUNC_PROLOGUE}{body}"));
    assert_eq!(disassemble(&program(rules)), want);
}

#[test]
fn runc_built_in_allow_list() {
    use DeviceKind::{All, Block, Char};
    let open = |major, minor| rule(true, Char, Some(major), minor, "rwm");
    // runc's rules, in its order; runc starts from deny-all, berth from
    // the parent's, so they follow the deny-all that Docker's spec has.
    let rules = [
        rule(false, All, None, None, "rwm"),
        rule(true, Char, None, None, "m"),
        rule(true, Block, None, None, "m"),
        open(1, Some(3)),
        open(1, Some(8)),
        open(1, Some(7)),
        open(5, Some(0)),
        open(1, Some(5)),
        open(1, Some(9)),
        open(136, None),
        open(5, Some(2)),
        open(10, Some(200)),
    ];
    assert_runc(&rules, RUNC_BUILT_IN_ALLOW_LIST);
}

#[test]
fn runc_privileged() {
    assert_runc(&all_devices(), RUNC_PRIVILEGED);
    assert!(
        DevicePolicy::from_rules(&all_devices())
            .unwrap()
            .allows_all()
    );
}

#[test]
fn runc_privileged_except_one_and_weird() {
    use DeviceKind::{All, Block};
    let except = [
        rule(true, All, None, None, "rwm"),
        rule(false, Block, Some(8), Some(0), "rwm"),
    ];
    assert_runc(&except, RUNC_PRIVILEGED_EXCEPT_ONE);
    // Weird: the deny of 8:1 before the allow-all is wiped out by it.
    let weird = [
        rule(false, Block, Some(8), Some(1), "rwm"),
        rule(true, All, None, None, "rwm"),
        rule(false, Block, Some(8), Some(2), "rwm"),
    ];
    assert_runc(
        &weird,
        &RUNC_PRIVILEGED_EXCEPT_ONE.replace("imm: 0 <block-1>", "imm: 2 <block-1>"),
    );
}

#[test]
fn no_rules_leave_the_parents() {
    // runc denies every device when given none; berth leaves the parent's
    // rules, as it does on v1, and attaches no program at all then.
    let policy = DevicePolicy::from_rules(&[]).unwrap();
    assert!(policy.allows_all());
}

/// Run a device filter on one request, as the kernel would: a small
/// interpreter for the instructions `program` emits.
fn run(insns: &[Insn], kind: DeviceKind, major: u32, minor: u32, access: &str) -> bool {
    let node = match kind {
        DeviceKind::Block => DEV_BLOCK,
        DeviceKind::Char => DEV_CHAR,
        DeviceKind::All => unreachable!("requests name a node type"),
    };
    let ctx = [
        ((access_bits(access) as u32) << 16) | node as u32,
        major,
        minor,
    ];
    let mut reg = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..4096 {
        let i = insns[pc];
        let (d, s) = (usize::from(i.dst()), usize::from(i.src()));
        let imm = i64::from(i.imm) as u64;
        let target = (pc as i64 + 1 + i64::from(i.off)) as usize;
        pc += 1;
        match i.code {
            0x61 => {
                assert_eq!(s, 1, "loads come from the context");
                reg[d] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]);
            }
            0x54 => reg[d] = u64::from(reg[d] as u32 & i.imm as u32),
            0x74 => reg[d] = u64::from((reg[d] as u32) >> i.imm),
            0xb4 => reg[d] = u64::from(i.imm as u32),
            0xbc => reg[d] = u64::from(reg[s] as u32),
            0x55 if reg[d] != imm => pc = target,
            0x5d if reg[d] != reg[s] => pc = target,
            0x15 if reg[d] == imm => pc = target,
            0x55 | 0x5d | 0x15 => {}
            0x95 => return reg[0] == 1,
            code => panic!("unexpected opcode {code:#x}"),
        }
    }
    panic!("the program did not end");
}

/// The program and the policy agree on every request over a grid of
/// devices, and the policy gives `expect`'s answers.
fn check(rules: &[DeviceRule], expect: &[(DeviceKind, u32, u32, &str, bool)]) {
    let policy = DevicePolicy::from_rules(rules).unwrap();
    let insns = policy.program();
    for kind in [DeviceKind::Char, DeviceKind::Block] {
        for major in [0, 1, 4, 5, 7, 8, 10, 136, 254] {
            for minor in [0, 1, 2, 3, 5, 7, 200, 232] {
                for access in ["r", "w", "rw", "m"] {
                    assert_eq!(
                        run(&insns, kind, major, minor, access),
                        policy.allows(kind, major, minor, access),
                        "{kind:?} {major}:{minor} {access} under {rules:?}"
                    );
                }
            }
        }
    }
    for &(kind, major, minor, access, allowed) in expect {
        assert_eq!(
            policy.allows(kind, major, minor, access),
            allowed,
            "{kind:?} {major}:{minor} {access}"
        );
    }
}

#[test]
fn docker_default_opens_only_the_standard_nodes_but_makes_any() {
    use DeviceKind::{Block, Char};
    check(
        &docker_default(),
        &[
            (Char, 1, 3, "rw", true),   // null
            (Char, 1, 9, "r", true),    // urandom
            (Char, 5, 1, "rw", true),   // console
            (Char, 136, 7, "rw", true), // a pty
            (Char, 10, 200, "rw", true),
            (Block, 7, 0, "r", false),    // a loop device
            (Block, 254, 0, "rw", false), // a virtio disk
            (Char, 10, 232, "r", false),  // kvm
            (Char, 4, 1, "w", false),     // tty1
            (Block, 8, 0, "m", true),
            (Char, 10, 232, "m", true),
        ],
    );
}

#[test]
fn access_bits_are_kept_apart() {
    use DeviceKind::{All, Block, Char};
    // Allow-list: read-only null, and a request must fit one exception.
    check(
        &[
            rule(false, All, None, None, "rwm"),
            rule(true, Char, Some(1), Some(3), "r"),
            rule(true, Block, Some(7), None, "w"),
        ],
        &[
            (Char, 1, 3, "r", true),
            (Char, 1, 3, "w", false),
            (Char, 1, 3, "rw", false),
            (Block, 7, 5, "w", true),
            (Block, 7, 5, "rw", false),
            (Char, 7, 5, "w", false),
        ],
    );
    // Deny-list: a write deny stops a read-write open, as in the v1
    // kernel (runc's program would let it through).
    check(
        &[
            rule(true, All, None, None, "rwm"),
            rule(false, Block, Some(8), Some(0), "w"),
            rule(false, Char, None, Some(1), "m"),
        ],
        &[
            (Block, 8, 0, "rw", false),
            (Block, 8, 0, "r", true),
            (Block, 8, 1, "rw", true),
            (Char, 4, 1, "m", false),
            (Char, 4, 1, "rw", true),
        ],
    );
    // Removing part of an exception keeps the rest.
    check(
        &[
            rule(false, All, None, None, "rwm"),
            rule(true, Char, Some(1), Some(3), "rwm"),
            rule(false, Char, Some(1), Some(3), "w"),
        ],
        &[
            (Char, 1, 3, "r", true),
            (Char, 1, 3, "w", false),
            (Char, 1, 3, "m", true),
        ],
    );
}

#[test]
fn a_hole_in_a_wildcard_is_refused() {
    use DeviceKind::{All, Char};
    let err = DevicePolicy::from_rules(&[
        rule(false, All, None, None, "rwm"),
        rule(true, Char, None, None, "rm"),
        rule(false, Char, Some(1), Some(3), "m"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("c 1:3 m"), "{err}");
    assert!(err.to_string().contains("wildcard"), "{err}");
    // Taking away access the wildcard does not give is fine.
    DevicePolicy::from_rules(&[
        rule(false, All, None, None, "rwm"),
        rule(true, Char, None, None, "m"),
        rule(false, Char, Some(1), Some(3), "w"),
    ])
    .unwrap();
}

#[test]
fn numbers_no_device_has_make_no_block() {
    use DeviceKind::{All, Char};
    let rules = [
        rule(false, All, None, None, "rwm"),
        rule(true, Char, Some(i64::from(u32::MAX)), None, "rwm"),
    ];
    assert_eq!(program(&rules).len(), 8, "prologue and the default only");
}
