//! Which device nodes a container may open: the OCI spec's
//! `linux.resources.devices`, enforced by the v1 `devices` controller and,
//! on cgroup v2, by a BPF device filter (`device_filter.rs`).
//!
//! Docker's default capability set includes CAP_MKNOD, so without these
//! rules a container could make a node for any host device (a disk, say)
//! and open it. The rules are written once, when the cgroup is made: the
//! kernel checks every open against them, and a child cgroup (an `exec`)
//! can never have more than its parent.

use crate::error::{CgroupError, Result};

/// The kind of device a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// One allow or deny rule, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None`: any.
    pub major: Option<i64>,
    /// `None`: any.
    pub minor: Option<i64>,
    /// Some of `r` (read), `w` (write), `m` (mknod).
    pub access: String,
}

impl DeviceRule {
    fn new(
        allow: bool,
        kind: DeviceKind,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> Self {
        Self {
            allow,
            kind,
            major,
            minor,
            access: access.to_owned(),
        }
    }

    /// The line for `devices.allow` / `devices.deny`: `a`, or `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let num = |n: Option<i64>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        match self.kind {
            DeviceKind::All => "a".to_owned(),
            DeviceKind::Char | DeviceKind::Block => format!(
                "{} {}:{} {}",
                if self.kind == DeviceKind::Char {
                    'c'
                } else {
                    'b'
                },
                num(self.major),
                num(self.minor),
                self.access
            ),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad_access =
            self.access.is_empty() || !self.access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
        let bad_number = [self.major, self.minor]
            .iter()
            .flatten()
            .any(|n| !(0..=u32::MAX as i64).contains(n));
        if bad_access || bad_number {
            return Err(CgroupError::InvalidValue {
                setting: "device rule",
                value: self.v1_line(),
                reason: "access is some of r, w and m; major and minor are numbers or any"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

/// Docker's (and runc's) default: any node may be made, but only these
/// opened — null, zero, full, random, urandom, tty, console, ptmx, the
/// pty slaves and tun.
pub fn docker_default() -> Vec<DeviceRule> {
    use DeviceKind::{All, Block, Char};
    let open = |major, minor: Option<i64>| DeviceRule::new(true, Char, Some(major), minor, "rwm");
    vec![
        DeviceRule::new(false, All, None, None, "rwm"),
        DeviceRule::new(true, Char, None, None, "m"),
        DeviceRule::new(true, Block, None, None, "m"),
        open(1, Some(3)),
        open(1, Some(5)),
        open(1, Some(7)),
        open(1, Some(8)),
        open(1, Some(9)),
        open(5, Some(0)),
        open(5, Some(1)),
        open(5, Some(2)),
        open(136, None),
        open(10, Some(200)),
    ]
}

/// `--privileged`: every device.
pub fn all_devices() -> Vec<DeviceRule> {
    vec![DeviceRule::new(true, DeviceKind::All, None, None, "rwm")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_what_the_kernel_parses() {
        let lines: Vec<String> = docker_default().iter().map(DeviceRule::v1_line).collect();
        assert_eq!(lines[0], "a");
        assert_eq!(lines[1], "c *:* m");
        assert_eq!(lines[2], "b *:* m");
        assert!(lines.contains(&"c 1:3 rwm".to_owned()));
        assert!(lines.contains(&"c 136:* rwm".to_owned()));
        assert_eq!(all_devices()[0].v1_line(), "a");
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut r = DeviceRule::new(true, DeviceKind::Char, Some(1), Some(3), "rwx");
        assert!(r.validate().is_err());
        r.access = "rw".into();
        assert!(r.validate().is_ok());
        r.major = Some(-2);
        assert!(r.validate().is_err());
        r.major = Some(1);
        r.access = String::new();
        assert!(r.validate().is_err());
    }
}
