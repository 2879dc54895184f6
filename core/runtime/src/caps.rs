//! Capability names to kernel bit numbers, through the `caps` crate's table.

use std::collections::HashSet;

use oci_spec::runtime::Capability;

use crate::error::RuntimeError;
use crate::spec::parse_capability;

/// The highest capability this kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub(crate) fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Every capability the running kernel supports and this process may
/// pass on (`--privileged`): inside a restricted sandbox the bounding set
/// is smaller than the kernel's list, and capset would refuse the rest.
pub(crate) fn all_supported() -> HashSet<Capability> {
    let last = last_cap();
    let bounding = caps::read(None, caps::CapSet::Bounding).unwrap_or_else(|_| caps::all());
    caps::all()
        .into_iter()
        .filter(|c| c.index() <= last && bounding.contains(c))
        .filter_map(|c| parse_capability(&c.to_string()).ok())
        .collect()
}

/// The kernel bit mask of `set`; capabilities this kernel lacks are left out.
pub(crate) fn mask(set: Option<&HashSet<Capability>>) -> Result<u64, RuntimeError> {
    let last = last_cap();
    let mut out = 0u64;
    for cap in set.into_iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let c: caps::Capability = name
            .parse()
            .map_err(|_| RuntimeError::BadCapability { name: name.clone() })?;
        if c.index() <= last {
            out |= c.bitmask();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn docker_default_set_is_a80425fb() {
        let set: HashSet<Capability> = crate::spec::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| parse_capability(c).unwrap())
            .collect();
        assert_eq!(mask(Some(&set)).unwrap(), 0xa80425fb);
    }
}
