//! The container's devices in its OCI spec: the rules
//! (`linux.resources.devices`), written from `berth_cgroups`' Docker
//! defaults when the spec is made and read back by the monitor when it
//! makes the cgroup that enforces them; and for `--privileged`, the host's
//! device nodes (`linux.devices`), which the runtime makes in the
//! container's `/dev`, as Docker does.

use berth_cgroups::{DeviceKind, DeviceRule};
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxResources, LinuxResourcesBuilder, Spec,
};

use crate::error::RuntimeError;

/// Docker's device rules (`--privileged`: every device) as spec resources.
pub fn to_spec(privileged: bool) -> Result<LinuxResources, RuntimeError> {
    let rules = if privileged {
        berth_cgroups::all_devices()
    } else {
        berth_cgroups::docker_default()
    };
    let bad = |e: oci_spec::OciSpecError| RuntimeError::BadSpec {
        reason: format!("device rules: {e}"),
    };
    let devices = rules
        .iter()
        .map(|r| {
            let mut b = LinuxDeviceCgroupBuilder::default()
                .allow(r.allow)
                .typ(match r.kind {
                    DeviceKind::All => LinuxDeviceType::A,
                    DeviceKind::Char => LinuxDeviceType::C,
                    DeviceKind::Block => LinuxDeviceType::B,
                })
                .access(r.access.clone());
            if let Some(major) = r.major {
                b = b.major(major);
            }
            if let Some(minor) = r.minor {
                b = b.minor(minor);
            }
            b.build().map_err(bad)
        })
        .collect::<Result<Vec<_>, _>>()?;
    LinuxResourcesBuilder::default()
        .devices(devices)
        .build()
        .map_err(bad)
}

/// The device rules a spec asks for, in order; none if it names none.
pub fn from_spec(spec: &Spec) -> Vec<DeviceRule> {
    let rules = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref());
    rules.into_iter().flatten().map(rule).collect()
}

fn rule(d: &LinuxDeviceCgroup) -> DeviceRule {
    DeviceRule {
        allow: d.allow(),
        kind: match d.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DeviceKind::Char,
            Some(LinuxDeviceType::B) => DeviceKind::Block,
            // `a`, or no type (the OCI default): all devices.
            _ => DeviceKind::All,
        },
        major: d.major(),
        minor: d.minor(),
        // The OCI default when absent.
        access: d.access().clone().unwrap_or_else(|| "rwm".to_owned()),
    }
}

/// The character and block devices directly in the host's `/dev`
/// (Docker's `--privileged` gives them all; subdirectories such as
/// `/dev/net` are not copied).
pub fn host_nodes() -> Vec<LinuxDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut nodes: Vec<LinuxDevice> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let ft = meta.file_type();
            let typ = if ft.is_char_device() {
                LinuxDeviceType::C
            } else if ft.is_block_device() {
                LinuxDeviceType::B
            } else {
                return None;
            };
            let rdev = meta.rdev();
            LinuxDeviceBuilder::default()
                .path(entry.path())
                .typ(typ)
                .major(i64::from(nix::sys::stat::major(rdev) as u32))
                .minor(i64::from(nix::sys::stat::minor(rdev) as u32))
                .file_mode(meta.mode() & 0o7777)
                .build()
                .ok()
        })
        .collect();
    nodes.sort_by(|a, b| a.path().cmp(b.path()));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_survive_the_spec_round_trip() {
        for privileged in [false, true] {
            let resources = to_spec(privileged).expect("spec");
            let mut linux = oci_spec::runtime::Linux::default();
            linux.set_resources(Some(resources));
            let mut spec = Spec::default();
            spec.set_linux(Some(linux));
            let want = if privileged {
                berth_cgroups::all_devices()
            } else {
                berth_cgroups::docker_default()
            };
            assert_eq!(from_spec(&spec), want);
        }
    }

    #[test]
    fn a_spec_without_rules_gives_none() {
        let mut spec = Spec::default();
        spec.set_linux(Some(oci_spec::runtime::Linux::default()));
        assert!(from_spec(&spec).is_empty());
    }

    #[test]
    fn the_hosts_nodes_are_listed_with_their_numbers() {
        let nodes = host_nodes();
        let null = nodes
            .iter()
            .find(|d| d.path() == std::path::Path::new("/dev/null"))
            .expect("/dev/null is a host device");
        assert_eq!(
            (null.typ(), null.major(), null.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert!(
            nodes
                .iter()
                .all(|d| d.path().parent() == Some(std::path::Path::new("/dev")))
        );
    }
}
