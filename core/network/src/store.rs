//! Networks and endpoints in sled, and address allocation.
//!
//! One JSON tree holds everything so that each change is one transaction:
//! `net/<name>` is a [`Network`], `eps/<name>` maps container id to
//! [`Endpoint`] for that network (the set of addresses in use is exactly the
//! endpoints' addresses, so an address can never be held without an
//! endpoint nor freed while one exists), and `subnets` maps each subnet in
//! use to its network, so two networks never overlap.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_state::{JsonTree, JsonTx, State, TxAbort};

use crate::NetworkError;
use crate::records::{DEFAULT_NETWORK, Driver, Endpoint, Network, NetworkConfig, Subnet};

type Endpoints = BTreeMap<String, Endpoint>;
type Subnets = BTreeMap<String, String>;

const SUBNETS: &str = "subnets";

fn net_key(name: &str) -> String {
    format!("net/{name}")
}

fn eps_key(name: &str) -> String {
    format!("eps/{name}")
}

/// What an endpoint needs besides its address; see [`Endpoint`].
#[derive(Clone, Debug, Default)]
pub struct EndpointSpec {
    pub aliases: Vec<String>,
    pub hostname: Option<String>,
    pub extra_hosts: Vec<crate::ExtraHost>,
    pub hosts_path: Option<std::path::PathBuf>,
}

/// The network records of one berth state database.
#[derive(Clone)]
pub struct NetworkStore {
    tree: JsonTree,
    config: NetworkConfig,
}

fn check_name(name: &str) -> Result<(), NetworkError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidName(name.to_owned()))
    }
}

/// Aliases and hostnames end up in other containers' hosts files: one with
/// whitespace or a newline could add entries there.
fn check_hostname(name: &str) -> Result<(), NetworkError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidHostname(name.to_owned()))
    }
}

impl NetworkStore {
    /// Open the records and make sure the default `bridge` network exists.
    pub fn open(state: &State, config: NetworkConfig) -> Result<Self, NetworkError> {
        let store = NetworkStore {
            tree: state.json_tree("network")?,
            config,
        };
        if store.get(DEFAULT_NETWORK)?.is_none() {
            let bridge = store.config.default_bridge.clone();
            match store.insert(
                DEFAULT_NETWORK,
                Some(store.config.default_subnet),
                Some(bridge),
                false,
            ) {
                Ok(_) | Err(NetworkError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(store)
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Record a user-defined network; with no `subnet`, the next free /24
    /// of the pool.
    pub fn create(&self, name: &str, subnet: Option<Subnet>) -> Result<Network, NetworkError> {
        check_name(name)?;
        if matches!(name, "none" | "host" | "default") {
            return Err(NetworkError::Predefined(name.to_owned()));
        }
        self.insert(name, subnet, None, true)
    }

    fn insert(
        &self,
        name: &str,
        subnet: Option<Subnet>,
        bridge: Option<String>,
        user_defined: bool,
    ) -> Result<Network, NetworkError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let room = 15usize.saturating_sub(self.config.bridge_prefix.len());
        let bridge_name = bridge
            .unwrap_or_else(|| format!("{}{}", self.config.bridge_prefix, &id[..room.min(32)]));
        let pool = self.config.pool;
        self.tree.transaction(|tx: &JsonTx<'_>| {
            if tx.get::<Network, NetworkError>(&net_key(name))?.is_some() {
                return Err(TxAbort::Abort(NetworkError::Exists(name.to_owned())));
            }
            let mut subnets: Subnets = tx.get(SUBNETS)?.unwrap_or_default();
            let used: Vec<Subnet> = subnets.keys().filter_map(|s| s.parse().ok()).collect();
            let free = |s: &Subnet| !used.iter().any(|u| u.overlaps(s));
            let subnet = match subnet {
                Some(s) if free(&s) => s,
                Some(s) => {
                    return Err(TxAbort::Abort(NetworkError::InvalidSubnet(format!(
                        "{s} overlaps a subnet in use"
                    ))));
                }
                None => pool
                    .split(24)
                    .find(free)
                    .ok_or_else(|| TxAbort::Abort(NetworkError::NoFreeSubnet(pool.to_string())))?,
            };
            let network = Network {
                name: name.to_owned(),
                id: id.clone(),
                driver: Driver::Bridge,
                subnet,
                gateway: subnet.gateway(),
                bridge_name: bridge_name.clone(),
                user_defined,
                created: berth_state::now(),
            };
            subnets.insert(subnet.to_string(), name.to_owned());
            tx.put(SUBNETS, &subnets)?;
            tx.put(&net_key(name), &network)?;
            Ok(network)
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<Network>, NetworkError> {
        Ok(self.tree.get(&net_key(name))?)
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<Network>, NetworkError> {
        let subnets: Subnets = self.tree.get(SUBNETS)?.unwrap_or_default();
        let mut names: Vec<&String> = subnets.values().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(n) = self.get(name)? {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Forget a network that has no endpoints; returns its record so the
    /// caller can remove the bridge and rules after the change is durable.
    pub fn remove(&self, name: &str) -> Result<Network, NetworkError> {
        if name == DEFAULT_NETWORK {
            return Err(NetworkError::Predefined(name.to_owned()));
        }
        self.tree.transaction(|tx| {
            let Some(network) = tx.get::<Network, NetworkError>(&net_key(name))? else {
                return Err(TxAbort::Abort(NetworkError::NotFound(name.to_owned())));
            };
            let eps: Endpoints = tx.get(&eps_key(name))?.unwrap_or_default();
            if !eps.is_empty() {
                return Err(TxAbort::Abort(NetworkError::InUse {
                    name: name.to_owned(),
                    count: eps.len(),
                }));
            }
            let mut subnets: Subnets = tx.get(SUBNETS)?.unwrap_or_default();
            subnets.remove(&network.subnet.to_string());
            tx.put(SUBNETS, &subnets)?;
            tx.remove(&net_key(name))?;
            tx.remove(&eps_key(name))?;
            Ok(network)
        })
    }

    /// Give `container_id` the lowest free address of `network` and record
    /// its endpoint, atomically: concurrent callers never get the same one.
    pub fn reserve(
        &self,
        network: &str,
        container_id: &str,
        spec: &EndpointSpec,
    ) -> Result<(Network, Endpoint), NetworkError> {
        for name in spec.aliases.iter().chain(&spec.hostname) {
            check_hostname(name)?;
        }
        let veth_host = self.veth_name(container_id);
        self.tree.transaction(|tx| {
            let Some(net) = tx.get::<Network, NetworkError>(&net_key(network))? else {
                return Err(TxAbort::Abort(NetworkError::NotFound(network.to_owned())));
            };
            let mut eps: Endpoints = tx.get(&eps_key(network))?.unwrap_or_default();
            if eps.contains_key(container_id) {
                return Err(TxAbort::Abort(NetworkError::AlreadyAttached {
                    container_id: container_id.to_owned(),
                    network: network.to_owned(),
                }));
            }
            let used: std::collections::HashSet<Ipv4Addr> = eps.values().map(|e| e.ip).collect();
            let Some(ip) = net.subnet.container_hosts().find(|ip| !used.contains(ip)) else {
                return Err(TxAbort::Abort(NetworkError::PoolExhausted {
                    network: network.to_owned(),
                    subnet: net.subnet.to_string(),
                }));
            };
            let endpoint = Endpoint {
                container_id: container_id.to_owned(),
                network: network.to_owned(),
                ip,
                prefix: net.subnet.prefix(),
                gateway: net.gateway,
                mac: mac_for(ip),
                veth_host: veth_host.clone(),
                aliases: spec.aliases.clone(),
                hostname: spec.hostname.clone(),
                extra_hosts: spec.extra_hosts.clone(),
                hosts_path: spec.hosts_path.clone(),
            };
            eps.insert(container_id.to_owned(), endpoint.clone());
            tx.put(&eps_key(network), &eps)?;
            Ok((net.clone(), endpoint))
        })
    }

    /// Drop the endpoint and so free its address. Returns what was removed.
    pub fn release(&self, network: &str, container_id: &str) -> Result<Endpoint, NetworkError> {
        self.tree.transaction(|tx| {
            let mut eps: Endpoints = tx.get(&eps_key(network))?.unwrap_or_default();
            let Some(ep) = eps.remove(container_id) else {
                return Err(TxAbort::Abort(NetworkError::NotAttached {
                    container_id: container_id.to_owned(),
                    network: network.to_owned(),
                }));
            };
            tx.put(&eps_key(network), &eps)?;
            Ok(ep)
        })
    }

    /// The endpoints of one network, by container id.
    pub fn endpoints(&self, network: &str) -> Result<Vec<Endpoint>, NetworkError> {
        let eps: Endpoints = self.tree.get(&eps_key(network))?.unwrap_or_default();
        Ok(eps.into_values().collect())
    }

    /// Every endpoint of one container, across networks.
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<Endpoint>, NetworkError> {
        let mut out = Vec::new();
        for net in self.list()? {
            let eps: Endpoints = self.tree.get(&eps_key(&net.name))?.unwrap_or_default();
            out.extend(eps.get(container_id).cloned());
        }
        Ok(out)
    }

    /// Host-side veth name (Linux allows 15 characters): the prefix, the
    /// start of the container id so `ip link` output can be read, and four
    /// random hex digits so one container can join several networks. The
    /// name is recorded in the endpoint, so it need not be derivable.
    pub fn veth_name(&self, container_id: &str) -> String {
        let room = 15usize.saturating_sub(self.config.veth_prefix.len() + 4);
        let id: String = container_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(room)
            .collect();
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{}{id}{}", self.config.veth_prefix, &random[..4])
    }
}

/// A locally administered MAC derived from the address, as Docker does
/// (02:42 + the four address bytes), so ARP caches stay right across
/// container restarts that keep the address.
fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}
