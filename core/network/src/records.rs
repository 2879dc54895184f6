//! The records kept in sled and the small address types they use.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::NetworkError;

/// An IPv4 subnet, `a.b.c.d/prefix`, stored in its canonical (masked) form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// `prefix` must be in 8..=30: smaller has no room for hosts, larger
    /// is not a network anyone means.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, NetworkError> {
        if !(8..=30).contains(&prefix) {
            return Err(NetworkError::InvalidSubnet(format!("{addr}/{prefix}")));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first host address, which berth gives the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !(u32::MAX << (32 - self.prefix)))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.network)
    }

    /// Addresses containers may get: after the gateway, before broadcast.
    pub fn container_hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.gateway()) + 1..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }

    /// The subnets of length `prefix` inside this one, in order.
    pub fn split(&self, prefix: u8) -> impl Iterator<Item = Subnet> {
        let count = if prefix >= self.prefix && prefix <= 30 {
            1u64 << (prefix - self.prefix)
        } else {
            0
        };
        let base = u64::from(u32::from(self.network));
        let step = 1u64 << (32 - u32::from(prefix.min(30)));
        (0..count).filter_map(move |i| {
            let addr = u32::try_from(base + i * step).ok()?;
            Subnet::new(Ipv4Addr::from(addr), prefix).ok()
        })
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetworkError::InvalidSubnet(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Subnet::new(addr, prefix).map_err(|_| bad())
    }
}

impl TryFrom<String> for Subnet {
    type Error = NetworkError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// How a network's packets move. Only the Linux bridge exists today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
}

/// A bridge network: what `berth network inspect` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: Driver,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub bridge_name: String,
    /// User-defined networks resolve container names; the default `bridge`
    /// network does not (Docker semantics).
    pub user_defined: bool,
    pub created: u64,
}

/// One container's attachment to one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub veth_host: String,
    /// Names other containers on the network may use for this one; the
    /// daemon passes the container's name here.
    pub aliases: Vec<String>,
    pub hostname: Option<String>,
    /// `--add-host` entries of the container.
    pub extra_hosts: Vec<ExtraHost>,
    /// The container's `/etc/hosts` on the host side, rewritten whenever a
    /// peer joins or leaves the network.
    pub hosts_path: Option<PathBuf>,
}

/// An `--add-host name:ip` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub ip: std::net::IpAddr,
}

impl FromStr for ExtraHost {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetworkError::InvalidExtraHost(s.to_owned());
        // Split at the first ':' so IPv6 addresses (which contain ':') work.
        let (name, ip) = s.split_once(':').ok_or_else(bad)?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(ExtraHost {
            name: name.to_owned(),
            ip: ip.parse().map_err(|_| bad())?,
        })
    }
}

/// Site configuration: where addresses come from.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Subnet of the default `bridge` network.
    pub default_subnet: Subnet,
    /// Linux bridge of the default network.
    pub default_bridge: String,
    /// User-defined networks each get the next free /24 from here.
    pub pool: Subnet,
    /// Prefix of user-defined networks' bridge names; the rest of the 15
    /// characters Linux allows is the network id.
    pub bridge_prefix: String,
    /// Prefix of host-side veth names; the rest is the container id.
    pub veth_prefix: String,
    /// Install MASQUERADE and FORWARD rules and enable ip_forward.
    pub nat: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        // 10.213/16 is far from Docker's 172.17/16 and the 192.168/16 of
        // home routers, so berth can run beside both.
        NetworkConfig {
            default_subnet: Subnet {
                network: Ipv4Addr::new(10, 213, 0, 0),
                prefix: 24,
            },
            default_bridge: "berth0".to_owned(),
            pool: Subnet {
                network: Ipv4Addr::new(10, 213, 0, 0),
                prefix: 16,
            },
            // Not "br-": that is Docker's, and reconcile deletes stray
            // bridges carrying our prefix.
            bridge_prefix: "berth-".to_owned(),
            veth_prefix: "vb-".to_owned(),
            nat: true,
        }
    }
}

/// The name of the default network.
pub const DEFAULT_NETWORK: &str = "bridge";

/// What `--network` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// Only a loopback interface.
    None,
    /// The host's own namespace: nothing to set up.
    Host,
    /// A bridge network by name (`bridge` is the default one).
    Bridge(String),
}

impl FromStr for NetworkMode {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "" | "default" => NetworkMode::Bridge(DEFAULT_NETWORK.to_owned()),
            name => NetworkMode::Bridge(name.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_math() -> Result<(), NetworkError> {
        let s: Subnet = "10.213.5.77/24".parse()?;
        assert_eq!(s.to_string(), "10.213.5.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 213, 5, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 213, 5, 255));
        assert_eq!(s.container_hosts().count(), 253);
        let pool: Subnet = "10.213.0.0/16".parse()?;
        assert_eq!(pool.split(24).count(), 256);
        assert_eq!(pool.split(24).nth(3), Some("10.213.3.0/24".parse()?));
        assert!(pool.overlaps(&s));
        assert!("10.0.0.0/31".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
        Ok(())
    }

    #[test]
    fn extra_host() -> Result<(), NetworkError> {
        let h: ExtraHost = "db:10.1.2.3".parse()?;
        assert_eq!(h.name, "db");
        let h: ExtraHost = "v6:[::1]".parse()?;
        assert_eq!(
            h.ip,
            "::1"
                .parse::<std::net::IpAddr>()
                .map_err(|_| NetworkError::InvalidExtraHost(String::new()))?
        );
        assert!("nocolon".parse::<ExtraHost>().is_err());
        Ok(())
    }
}
