//! System call numbers by name, for each ABI a container's process may
//! call the kernel through: seccomp sees numbers, profiles name calls.
//!
//! An x86_64 kernel also runs i386 (`x86`) and x32 programs, and a filter
//! must cover all three or a 32-bit program slips past it; x32 calls come
//! with the x86_64 audit architecture and bit 30 set in the number.

mod aarch64;
mod riscv64;
mod x32;
mod x86;
mod x86_64;

use oci_spec::runtime::Arch;

/// `AUDIT_ARCH_*` from `<linux/audit.h>`: the machine type, with bits for
/// 64-bit and little-endian.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_RISCV64: u32 = 0xC000_00F3;

/// `__X32_SYSCALL_BIT`: x32 system call numbers are x86_64's table with
/// this bit set.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A system call ABI a filter can be written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Abi {
    X86_64,
    X32,
    X86,
    Aarch64,
    Riscv64,
}

impl Abi {
    /// The ABI of this build, if we have a table for it.
    pub(crate) fn native() -> Option<Abi> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Abi::X86_64),
            "aarch64" => Some(Abi::Aarch64),
            "riscv64" => Some(Abi::Riscv64),
            _ => None,
        }
    }

    /// The ABI an OCI profile's architecture names; `None` when we have no
    /// table for it.
    pub(crate) fn of(arch: Arch) -> Option<Abi> {
        match arch {
            Arch::ScmpArchNative => Abi::native(),
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX32 => Some(Abi::X32),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            Arch::ScmpArchRiscv64 => Some(Abi::Riscv64),
            _ => None,
        }
    }

    /// The OCI name of this ABI, as a profile lists it.
    pub(crate) fn arch(self) -> Arch {
        match self {
            Abi::X86_64 => Arch::ScmpArchX86_64,
            Abi::X32 => Arch::ScmpArchX32,
            Abi::X86 => Arch::ScmpArchX86,
            Abi::Aarch64 => Arch::ScmpArchAarch64,
            Abi::Riscv64 => Arch::ScmpArchRiscv64,
        }
    }

    /// Whether the kernel this build runs on takes system calls through
    /// `arch`: those a filter here must handle.
    pub(crate) fn runs_here(arch: Arch) -> bool {
        let native = std::env::consts::ARCH;
        match arch {
            Arch::ScmpArchNative => true,
            Arch::ScmpArchX86_64 | Arch::ScmpArchX32 | Arch::ScmpArchX86 => native == "x86_64",
            Arch::ScmpArchAarch64 | Arch::ScmpArchArm => native == "aarch64",
            Arch::ScmpArchRiscv64 => native == "riscv64",
            _ => false,
        }
    }

    /// The `seccomp_data.arch` of a call made through this ABI.
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Riscv64 => AUDIT_ARCH_RISCV64,
        }
    }

    /// Whether the ABI passes 32-bit arguments (compared as such, as
    /// libseccomp does).
    pub(crate) fn is_32bit(self) -> bool {
        self == Abi::X86
    }

    /// The `seccomp_data.nr` of `name` called through this ABI.
    pub(crate) fn number(self, name: &str) -> Option<u32> {
        let (table, index) = self.table();
        let mut slot = fnv1a(name.as_bytes()) % INDEX_LEN;
        loop {
            let (n, nr) = table.get(usize::from(index[slot]).checked_sub(1)?)?;
            if *n == name {
                return Some(nr | self.number_base());
            }
            slot = (slot + 1) % INDEX_LEN;
        }
    }

    /// What [`Abi::number`] adds to the table's numbers.
    pub(crate) fn number_base(self) -> u32 {
        if self == Abi::X32 { X32_SYSCALL_BIT } else { 0 }
    }

    /// One more than the highest number in the table (without
    /// [`Abi::number_base`]): the calls of this ABI are below it.
    pub(crate) fn end(self) -> u32 {
        self.table()
            .0
            .iter()
            .map(|(_, nr)| nr + 1)
            .max()
            .unwrap_or(0)
    }

    fn table(self) -> (&'static [(&'static str, u32)], &'static Index) {
        match self {
            Abi::X86_64 => (x86_64::TABLE, &X86_64_INDEX),
            Abi::X32 => (x32::TABLE, &X32_INDEX),
            Abi::X86 => (x86::TABLE, &X86_INDEX),
            Abi::Aarch64 => (aarch64::TABLE, &AARCH64_INDEX),
            Abi::Riscv64 => (riscv64::TABLE, &RISCV64_INDEX),
        }
    }
}

/// A hash index over a table, built at compile time: a profile names
/// ~400 calls and each is looked up for every ABI (1,200 lookups), which
/// binary search over the names made a third of the compile time.
/// Slots hold a table position plus one; 0 is empty. Twice the largest
/// table, so a probe soon meets an empty slot.
const INDEX_LEN: usize = 1024;
type Index = [u16; INDEX_LEN];

const fn fnv1a(bytes: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    h as usize
}

const fn index(table: &[(&str, u32)]) -> Index {
    assert!(table.len() < INDEX_LEN / 2);
    let mut index = [0u16; INDEX_LEN];
    let mut i = 0;
    while i < table.len() {
        let mut slot = fnv1a(table[i].0.as_bytes()) % INDEX_LEN;
        while index[slot] != 0 {
            slot = (slot + 1) % INDEX_LEN;
        }
        index[slot] = (i + 1) as u16;
        i += 1;
    }
    index
}

static X86_64_INDEX: Index = index(x86_64::TABLE);
static X32_INDEX: Index = index(x32::TABLE);
static X86_INDEX: Index = index(x86::TABLE);
static AARCH64_INDEX: Index = index(aarch64::TABLE);
static RISCV64_INDEX: Index = index(riscv64::TABLE);

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Abi; 5] = [Abi::X86_64, Abi::X32, Abi::X86, Abi::Aarch64, Abi::Riscv64];

    #[test]
    fn every_name_is_found_and_numbers_are_unique() {
        for abi in ALL {
            let (t, _) = abi.table();
            assert!(
                t.windows(2).all(|w| w[0].0 < w[1].0),
                "{abi:?}: names repeat"
            );
            for (name, _) in t {
                assert!(abi.number(name).is_some(), "{abi:?}: {name} not found");
            }
            let mut nrs: Vec<u32> = t.iter().map(|(_, nr)| *nr).collect();
            nrs.sort_unstable();
            let len = nrs.len();
            nrs.dedup();
            assert_eq!(nrs.len(), len, "{abi:?} gives one number to two calls");
        }
    }

    #[test]
    fn numbers_match_the_kernel() {
        // Spot checks against arch/*/entry/syscalls/*.tbl and
        // include/uapi/asm-generic/unistd.h.
        assert_eq!(Abi::X86_64.number("read"), Some(0));
        assert_eq!(Abi::X86_64.number("unshare"), Some(272));
        assert_eq!(Abi::X86_64.number("clone3"), Some(435));
        assert_eq!(Abi::X86_64.number("removexattrat"), Some(466));
        assert_eq!(Abi::X86.number("read"), Some(3));
        assert_eq!(Abi::X86.number("socketcall"), Some(102));
        assert_eq!(Abi::X32.number("read"), Some(X32_SYSCALL_BIT));
        assert_eq!(Abi::X32.number("ioctl"), Some(X32_SYSCALL_BIT | 514));
        assert_eq!(Abi::Aarch64.number("read"), Some(63));
        assert_eq!(Abi::Aarch64.number("clone"), Some(220));
        // Names an ABI lacks are absent, not guessed.
        assert_eq!(Abi::X86_64.number("socketcall"), None);
        assert_eq!(Abi::Aarch64.number("open"), None);
        assert_eq!(Abi::X86_64.number("no_such_call"), None);
    }

    #[test]
    fn native_abi_is_known_on_the_machines_we_build_for() {
        if matches!(std::env::consts::ARCH, "x86_64" | "aarch64" | "riscv64") {
            let abi = Abi::native().expect("a table for this build's ABI");
            assert!(Abi::runs_here(abi.arch()));
            assert_eq!(Abi::of(Arch::ScmpArchNative), Some(abi));
        }
    }
}
