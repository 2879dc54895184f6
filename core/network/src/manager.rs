//! The operations the daemon calls: network create / ls / inspect / rm and
//! container attach / detach, tying records, links, rules and files together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_state::State;

use crate::kernel::{Kernel, Linux};
use crate::records::{Endpoint, Network, NetworkConfig, NetworkMode, Subnet};
use crate::store::{EndpointSpec, NetworkStore};
use crate::{NetworkError, files, netlink, timing};
use std::time::Instant;

/// Container networking for one daemon.
#[derive(Clone)]
pub struct Networks<K: Kernel = Linux> {
    store: NetworkStore,
    kernel: K,
    /// Serialises hosts-file rewrites: each one reads the records then
    /// writes, and two interleaved could leave the older view on disk.
    hosts_lock: Arc<Mutex<()>>,
    /// Networks whose bridge and NAT rules this process has already set
    /// up, with the bridge's interface index: checking them costs netlink
    /// round trips and several `iptables` runs, which would dominate every
    /// container start.
    prepared: Arc<Mutex<BTreeMap<String, u32>>>,
}

/// What `berth network inspect` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NetworkInspect {
    pub network: Network,
    pub endpoints: Vec<Endpoint>,
}

impl Networks<Linux> {
    /// Open the records in `state` and make sure the default network is
    /// recorded (its bridge is created on first use).
    pub fn open(state: &State, config: NetworkConfig) -> Result<Self, NetworkError> {
        Self::with_kernel(state, config, Linux)
    }
}

impl<K: Kernel> Networks<K> {
    /// Like [`Networks::open`], with another [`Kernel`] (a fake in tests).
    pub fn with_kernel(
        state: &State,
        config: NetworkConfig,
        kernel: K,
    ) -> Result<Self, NetworkError> {
        Ok(Networks {
            store: NetworkStore::open(state, config)?,
            kernel,
            hosts_lock: Arc::default(),
            prepared: Arc::default(),
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
        self.forget_prepared(&network.name);
        self.kernel.delete_link(&network.bridge_name).await?;
        if self.store.config().nat {
            self.kernel.remove_nat(&network.bridge_name).await?;
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
        let t = Instant::now();
        let (net, endpoint) = self.store.reserve(network, container_id, &spec)?;
        timing::step("attach: reserve address (sled)", t);
        let t = Instant::now();
        let plumbed = self.plumb(netns, &net, &endpoint).await;
        timing::step("attach: links (netlink)", t);
        if let Err(e) = plumbed {
            tracing::warn!(container_id, network, error = %e, "attach failed; rolling back");
            // The bridge and rules stay: they are the network's, and shared.
            if let Err(e) = self.kernel.delete_link(&endpoint.veth_host).await {
                tracing::warn!(veth = %endpoint.veth_host, error = %e, "rollback: deleting veth");
            }
            if let Err(e) = self.store.release(network, container_id) {
                tracing::warn!(container_id, network, error = %e, "rollback: releasing address");
            }
            return Err(e);
        }
        tracing::info!(container_id, network, ip = %endpoint.ip, veth = %endpoint.veth_host, "attached");
        let t = Instant::now();
        if net.user_defined {
            self.refresh_hosts(network)?;
        } else {
            self.write_hosts(&endpoint)?;
        }
        timing::step("attach: hosts files", t);
        Ok(endpoint)
    }

    async fn plumb(&self, netns: &Path, net: &Network, ep: &Endpoint) -> Result<(), NetworkError> {
        // Fail before touching the host when the namespace is gone.
        netlink::open_netns(netns)?;
        let prepared = self
            .prepared
            .lock()
            .ok()
            .and_then(|p| p.get(&net.name).copied());
        let bridge = match prepared {
            Some(index) => index,
            None => {
                let t = Instant::now();
                let index = self.kernel.ensure_bridge(net).await?;
                timing::step("attach: ensure bridge (once)", t);
                if self.store.config().nat {
                    self.kernel.ensure_nat(net).await?;
                }
                if let Ok(mut p) = self.prepared.lock() {
                    p.insert(net.name.clone(), index);
                }
                index
            }
        };
        let added = self.kernel.add_endpoint(netns, net, bridge, ep).await;
        if added.is_err() {
            // Perhaps someone removed the bridge: check it again next time.
            self.forget_prepared(&net.name);
        }
        added
    }

    fn forget_prepared(&self, network: &str) {
        if let Ok(mut p) = self.prepared.lock() {
            p.remove(network);
        }
    }

    /// Detach a container from one network: delete its veth (both ends go)
    /// and free its address.
    pub async fn detach(&self, container_id: &str, network: &str) -> Result<(), NetworkError> {
        let t = Instant::now();
        let endpoint = self
            .store
            .endpoints(network)?
            .into_iter()
            .find(|e| e.container_id == container_id)
            .ok_or_else(|| NetworkError::NotAttached {
                container_id: container_id.to_owned(),
                network: network.to_owned(),
            })?;
        timing::step("detach: find endpoint (sled)", t);
        // When the container's namespace died the kernel deletes the pair
        // too, but only some 16 ms later (after an RCU grace period):
        // deleting it now is quicker, and leaves no veth to see once
        // `rm` returns.
        let t = Instant::now();
        self.kernel.delete_link(&endpoint.veth_host).await?;
        timing::step("detach: delete veth (netlink)", t);
        let t = Instant::now();
        self.store.release(network, container_id)?;
        timing::step("detach: release address (sled)", t);
        tracing::info!(container_id, network, ip = %endpoint.ip, "detached");
        // On a network without name discovery no other container's hosts
        // file mentions this one.
        let t = Instant::now();
        if self.store.get(network)?.is_some_and(|n| n.user_defined) {
            self.refresh_hosts(network)?;
        }
        timing::step("detach: hosts files", t);
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
        // A poisoned lock only means another rewrite panicked; the files
        // are rewritten whole, so carrying on is safe.
        let _guard = self.hosts_lock.lock().unwrap_or_else(|p| p.into_inner());
        for ep in self.store.endpoints(network)? {
            if let Some(path) = &ep.hosts_path {
                files::write_in_place(path, &self.hosts_file(&ep.container_id)?)?;
            }
        }
        Ok(())
    }

    /// Rewrite the hosts file of `ep`'s container alone: what joining a
    /// network without name discovery changes. (Rewriting every member's
    /// there would make each start cost a write per running container.)
    fn write_hosts(&self, ep: &Endpoint) -> Result<(), NetworkError> {
        let Some(path) = &ep.hosts_path else {
            return Ok(());
        };
        let _guard = self.hosts_lock.lock().unwrap_or_else(|p| p.into_inner());
        files::write_in_place(path, &self.hosts_file(&ep.container_id)?)
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
        let mut removed = Vec::new();
        for name in self.kernel.host_links().await? {
            let veth = name.starts_with(config.veth_prefix.as_str());
            let bridge = name.starts_with(config.bridge_prefix.as_str());
            if !(veth || bridge) || owned.contains(&name) {
                continue;
            }
            // Deleting one end of a stray veth pair took the other with it.
            if !self.kernel.delete_link(&name).await? {
                continue;
            }
            if bridge && config.nat {
                self.kernel.remove_nat(&name).await?;
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

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
