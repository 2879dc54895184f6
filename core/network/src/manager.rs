//! The operations the daemon calls: network create / ls / inspect / rm and
//! container attach / detach, tying records, links, rules and files together.

use std::collections::BTreeSet;
use std::path::Path;

use berth_state::State;

use crate::records::{Endpoint, Network, NetworkConfig, NetworkMode, Subnet};
use crate::store::{EndpointSpec, NetworkStore};
use crate::{NetworkError, files, nat, netlink};

/// Container networking for one daemon.
#[derive(Clone)]
pub struct Networks {
    store: NetworkStore,
}

/// What `berth network inspect` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NetworkInspect {
    pub network: Network,
    pub endpoints: Vec<Endpoint>,
}

impl Networks {
    /// Open the records in `state` and make sure the default network is
    /// recorded (its bridge is created on first use).
    pub fn open(state: &State, config: NetworkConfig) -> Result<Self, NetworkError> {
        Ok(Networks {
            store: NetworkStore::open(state, config)?,
        })
    }

    /// The records, for callers that need lower-level access.
    pub fn store(&self) -> &NetworkStore {
        &self.store
    }

    /// `berth network create NAME [--subnet S]`.
    pub fn create(&self, name: &str, subnet: Option<Subnet>) -> Result<Network, NetworkError> {
        let network = self.store.create(name, subnet)?;
        tracing::info!(network = name, subnet = %network.subnet, bridge = %network.bridge_name, "created network");
        Ok(network)
    }

    /// `berth network ls`.
    pub fn list(&self) -> Result<Vec<Network>, NetworkError> {
        self.store.list()
    }

    /// `berth network inspect NAME`.
    pub fn inspect(&self, name: &str) -> Result<NetworkInspect, NetworkError> {
        let network = self
            .store
            .get(name)?
            .ok_or_else(|| NetworkError::NotFound(name.to_owned()))?;
        Ok(NetworkInspect {
            endpoints: self.store.endpoints(name)?,
            network,
        })
    }

    /// `berth network rm NAME`: refused while containers are attached. The
    /// record goes first, so a crash afterwards leaves at worst an unused
    /// bridge for [`Networks::reconcile`], never a record without a bridge
    /// that the next attach could not repair.
    pub async fn remove(&self, name: &str) -> Result<(), NetworkError> {
        let network = self.store.remove(name)?;
        self.teardown(&network).await?;
        tracing::info!(network = name, "removed network");
        Ok(())
    }

    /// Delete a network's bridge and rules (not its record).
    async fn teardown(&self, network: &Network) -> Result<(), NetworkError> {
        let host = netlink::host()?;
        netlink::delete_link(&host, &network.bridge_name).await?;
        if self.store.config().nat {
            let net = network.clone();
            blocking(move || nat::remove(&net)).await?;
        }
        Ok(())
    }

    /// Set up the namespace at `netns` for `--network MODE`; returns the
    /// endpoint for bridge networks.
    pub async fn connect(
        &self,
        mode: &NetworkMode,
        netns: &Path,
        container_id: &str,
        spec: EndpointSpec,
    ) -> Result<Option<Endpoint>, NetworkError> {
        match mode {
            NetworkMode::Host => Ok(None),
            NetworkMode::None => {
                setup_none(netns).await?;
                Ok(None)
            }
            NetworkMode::Bridge(name) => {
                self.attach(netns, container_id, name, spec).await.map(Some)
            }
        }
    }

    /// Attach the namespace at `netns` to bridge network `network`: an
    /// address from its subnet, a veth pair whose container end is `eth0`
    /// with a default route via the gateway. On failure nothing is left:
    /// no link, no address held.
    pub async fn attach(
        &self,
        netns: &Path,
        container_id: &str,
        network: &str,
        spec: EndpointSpec,
    ) -> Result<Endpoint, NetworkError> {
        let (net, endpoint) = self.store.reserve(network, container_id, &spec)?;
        match self.plumb(netns, &net, &endpoint).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(container_id, network, error = %e, "attach failed; rolling back");
                if let Ok(host) = netlink::host() {
                    let _ = netlink::delete_link(&host, &endpoint.veth_host).await;
                }
                let _ = self.store.release(network, container_id);
                return Err(e);
            }
        }
        tracing::info!(container_id, network, ip = %endpoint.ip, veth = %endpoint.veth_host, "attached");
        self.refresh_hosts(network)?;
        Ok(endpoint)
    }

    async fn plumb(&self, netns: &Path, net: &Network, ep: &Endpoint) -> Result<(), NetworkError> {
        let ns_file = netlink::open_netns(netns)?;
        let host = netlink::host()?;
        let bridge =
            netlink::ensure_bridge(&host, &net.bridge_name, net.gateway, net.subnet.prefix())
                .await?;
        if self.store.config().nat {
            let n = net.clone();
            blocking(move || nat::ensure(&n)).await?;
        }
        // A temporary name for the container end while it is still on the
        // host, where `eth0` is taken.
        let tail: String = {
            let chars: Vec<char> = ep.veth_host.chars().collect();
            chars[chars.len().saturating_sub(13)..].iter().collect()
        };
        let peer = format!("bp{tail}");
        netlink::create_veth(&host, &ep.veth_host, &peer, bridge, &ns_file).await?;
        let inside = netlink::in_netns(netns).await?;
        // eth0 for the first network, eth1 for the next, as Docker does.
        let names = netlink::link_names(&inside).await?;
        let ifname = (0..)
            .map(|n| format!("eth{n}"))
            .find(|n| !names.contains(n))
            .unwrap_or_else(|| "eth0".to_owned());
        netlink::configure_eth(&inside, &peer, &ifname, ep).await
    }

    /// Detach a container from one network: delete its veth (both ends go)
    /// and free its address.
    pub async fn detach(&self, container_id: &str, network: &str) -> Result<(), NetworkError> {
        let endpoint = self
            .store
            .endpoints(network)?
            .into_iter()
            .find(|e| e.container_id == container_id)
            .ok_or_else(|| NetworkError::NotAttached {
                container_id: container_id.to_owned(),
                network: network.to_owned(),
            })?;
        let host = netlink::host()?;
        // The link is gone already when the container's namespace died.
        netlink::delete_link(&host, &endpoint.veth_host).await?;
        self.store.release(network, container_id)?;
        tracing::info!(container_id, network, ip = %endpoint.ip, "detached");
        self.refresh_hosts(network)?;
        Ok(())
    }

    /// Detach a container from every network it is on (`berth rm`).
    pub async fn detach_all(&self, container_id: &str) -> Result<(), NetworkError> {
        for ep in self.store.container_endpoints(container_id)? {
            self.detach(container_id, &ep.network).await?;
        }
        Ok(())
    }

    /// The `/etc/hosts` of a container: its own name, its `--add-host`
    /// entries, and the names of its peers on user-defined networks.
    pub fn hosts_file(&self, container_id: &str) -> Result<String, NetworkError> {
        let own = self.store.container_endpoints(container_id)?;
        let mut peers = Vec::new();
        let mut seen = BTreeSet::new();
        for ep in &own {
            let user_defined = self.store.get(&ep.network)?.is_some_and(|n| n.user_defined);
            if !user_defined {
                continue;
            }
            for peer in self.store.endpoints(&ep.network)? {
                if peer.container_id != container_id
                    && seen.insert((peer.ip, peer.container_id.clone()))
                {
                    peers.push(peer);
                }
            }
        }
        Ok(files::render_hosts(&own, &peers))
    }

    /// Rewrite the hosts file of every container on `network` that has one.
    pub fn refresh_hosts(&self, network: &str) -> Result<(), NetworkError> {
        for ep in self.store.endpoints(network)? {
            if let Some(path) = &ep.hosts_path {
                files::write_in_place(path, &self.hosts_file(&ep.container_id)?)?;
            }
        }
        Ok(())
    }

    /// Start-up repair, for what a crash between a link change and its
    /// record left behind: host veths (by our prefix) that no endpoint owns,
    /// and bridges (by our prefix) of networks no longer recorded, with
    /// their iptables rules. Returns the links it deleted.
    pub async fn reconcile(&self) -> Result<Vec<String>, NetworkError> {
        let mut owned = BTreeSet::new();
        for net in self.store.list()? {
            owned.extend(
                self.store
                    .endpoints(&net.name)?
                    .into_iter()
                    .map(|e| e.veth_host),
            );
            owned.insert(net.bridge_name);
        }
        let config = self.store.config();
        let host = netlink::host()?;
        let mut removed = Vec::new();
        for name in netlink::link_names(&host).await? {
            let veth = name.starts_with(config.veth_prefix.as_str());
            let bridge = name.starts_with(config.bridge_prefix.as_str());
            if !(veth || bridge) || owned.contains(&name) {
                continue;
            }
            // Deleting one end of a stray veth pair took the other with it.
            if !netlink::delete_link(&host, &name).await? {
                continue;
            }
            if bridge && config.nat {
                let tagged = name.clone();
                blocking(move || nat::remove_tagged(&tagged)).await?;
            }
            tracing::info!(link = %name, "removed leftover link");
            removed.push(name);
        }
        Ok(removed)
    }
}

/// `--network none`: the namespace keeps only `lo`, which must be up.
pub async fn setup_none(netns: &Path) -> Result<(), NetworkError> {
    let inside = netlink::in_netns(netns).await?;
    netlink::loopback_up(&inside).await
}

/// Names of the links in the namespace at `netns`.
pub async fn links_in(netns: &Path) -> Result<Vec<String>, NetworkError> {
    let inside = netlink::in_netns(netns).await?;
    netlink::link_names(&inside).await
}

/// Names of the links in the daemon's own namespace.
pub async fn host_links() -> Result<Vec<String>, NetworkError> {
    netlink::link_names(&netlink::host()?).await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NetworkError> + Send + 'static,
) -> Result<T, NetworkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetworkError::Io {
            op: "running iptables".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}
