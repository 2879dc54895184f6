//! The resource settings of a container, with Docker's meaning, and the
//! arithmetic that turns them into control-file values.

use crate::error::{CgroupError, Result};

/// The CFS period berth uses for `--cpus`, as Docker does (100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// A limit that may be lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit (`-1` on the Docker command line).
    Unlimited,
    /// At most this many bytes (or processes).
    Max(u64),
}

impl Limit {
    /// Docker's convention: a negative number means unlimited.
    pub fn from_docker(value: i64) -> Limit {
        u64::try_from(value).map_or(Limit::Unlimited, Limit::Max)
    }
}

/// Resource settings; `None` leaves the current value alone, so the same
/// struct serves `create` and a live `update`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `--cpus`: CPUs worth of time per period; `0.0` lifts the quota.
    pub cpus: Option<f64>,
    /// `--cpu-shares`: relative weight, 2..=262144 (Docker's default 1024).
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`, e.g. `0-1` or `0,2`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--memory`.
    pub memory: Option<Limit>,
    /// `--memory-swap`: memory plus swap, in total.
    pub memory_swap: Option<Limit>,
    /// `--memory-reservation`: a soft limit.
    pub memory_reservation: Option<Limit>,
    /// `--pids-limit` (Docker: 0 or -1 is unlimited).
    pub pids_limit: Option<Limit>,
    /// `--blkio-weight`, 10..=1000.
    pub blkio_weight: Option<u16>,
    /// Device access rules, applied in order when the cgroup is made (not
    /// by `apply`: a live update cannot widen them); empty leaves the
    /// parent's. On cgroup v2 they become the cgroup's device filter, which
    /// a later `create` replaces.
    pub devices: Vec<crate::DeviceRule>,
}

impl Resources {
    /// Check ranges and the settings that constrain each other, before any
    /// file is written, so a bad `update` changes nothing.
    pub fn validate(&self) -> Result<()> {
        crate::device_filter::DevicePolicy::from_rules(&self.devices)?;
        if let Some(cpus) = self.cpus {
            if !cpus.is_finite() || cpus < 0.0 {
                return Err(invalid("--cpus", cpus, "must be 0 or a positive number"));
            }
            if cpus > 0.0 && cpu_quota_us(cpus) < 1000 {
                return Err(invalid("--cpus", cpus, "must be at least 0.01"));
            }
        }
        if let Some(shares) = self.cpu_shares
            && !(2..=262_144).contains(&shares)
        {
            return Err(invalid("--cpu-shares", shares, "must be in 2..=262144"));
        }
        if let Some(weight) = self.blkio_weight
            && !(10..=1000).contains(&weight)
        {
            return Err(invalid("--blkio-weight", weight, "must be in 10..=1000"));
        }
        if let Some(Limit::Max(m)) = self.memory {
            // The kernel rounds to pages and an OOM loop below this is
            // pointless; Docker refuses the same.
            if m < 6 * 1024 * 1024 {
                return Err(invalid("--memory", m, "must be at least 6MiB"));
            }
        }
        if let (Some(Limit::Max(swap)), Some(Limit::Max(mem))) = (self.memory_swap, self.memory)
            && swap < mem
        {
            return Err(invalid(
                "--memory-swap",
                swap,
                "must be at least --memory, as it counts memory plus swap",
            ));
        }
        if let (Some(Limit::Max(_)), None | Some(Limit::Unlimited)) =
            (self.memory_swap, self.memory)
        {
            return Err(invalid(
                "--memory-swap",
                format!("{:?}", self.memory_swap),
                "needs --memory as well",
            ));
        }
        Ok(())
    }
}

fn invalid(setting: &'static str, value: impl ToString, reason: &str) -> CgroupError {
    CgroupError::InvalidValue {
        setting,
        value: value.to_string(),
        reason: reason.to_owned(),
    }
}

/// CFS quota for `--cpus` over [`CPU_PERIOD_US`].
pub fn cpu_quota_us(cpus: f64) -> u64 {
    // Rounded and clamped: validate() has refused NaN and negatives, and no
    // machine has 2^44 CPUs.
    (cpus * CPU_PERIOD_US as f64)
        .round()
        .clamp(0.0, u64::MAX as f64) as u64
}

/// Docker's (and runc's) conversion of v1 `cpu.shares` to v2 `cpu.weight`:
/// 2..=262144 onto 1..=10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// runc's conversion of a blkio weight (10..=1000) to v2 `io.weight`
/// (1..=10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_conversions() {
        assert_eq!(cpu_quota_us(1.5), 150_000);
        assert_eq!(cpu_quota_us(0.2), 20_000);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(Limit::from_docker(-1), Limit::Unlimited);
        assert_eq!(Limit::from_docker(20), Limit::Max(20));
    }

    #[test]
    fn validation() {
        let mb = |n: u64| Some(Limit::Max(n << 20));
        let ok = Resources {
            cpus: Some(0.5),
            memory: mb(64),
            memory_swap: mb(128),
            ..Resources::default()
        };
        ok.validate().unwrap();
        for bad in [
            Resources {
                cpus: Some(-1.0),
                ..Resources::default()
            },
            Resources {
                cpus: Some(f64::NAN),
                ..Resources::default()
            },
            Resources {
                cpu_shares: Some(1),
                ..Resources::default()
            },
            Resources {
                blkio_weight: Some(5),
                ..Resources::default()
            },
            Resources {
                memory: mb(1),
                ..Resources::default()
            },
            Resources {
                memory: mb(64),
                memory_swap: mb(32),
                ..Resources::default()
            },
            Resources {
                memory_swap: mb(32),
                ..Resources::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} accepted");
        }
    }
}
