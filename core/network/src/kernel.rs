//! The seam between network logic and the kernel. [`Networks`] decides
//! what to create, roll back and delete; a [`Kernel`] does it. [`Linux`] is
//! the real one (netlink for links, iptables for rules); unit tests use a
//! recording fake, and the integration tests run [`Linux`] as root.
//!
//! [`Networks`]: crate::Networks

use std::future::Future;
use std::path::Path;

use crate::records::{Endpoint, Network};
use std::time::Instant;

use crate::{NetworkError, link_delete, nat, netlink, timing};

/// Kernel operations on behalf of a bridge network.
pub trait Kernel: Send + Sync + 'static {
    /// Create the network's bridge if missing, with the gateway address, up;
    /// returns its interface index.
    fn ensure_bridge(
        &self,
        net: &Network,
    ) -> impl Future<Output = Result<u32, NetworkError>> + Send;

    /// Create `ep`'s veth pair on the bridge (interface index `bridge`) and
    /// configure its container end inside the namespace at `netns` (name
    /// `ethN`, address, MAC, up, `lo` up, default route unless one exists).
    fn add_endpoint(
        &self,
        netns: &Path,
        net: &Network,
        bridge: u32,
        ep: &Endpoint,
    ) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Delete a host link; `false` when it did not exist. Returns once the
    /// link is no longer visible, not once the kernel has freed it.
    fn delete_link(&self, name: &str) -> impl Future<Output = Result<bool, NetworkError>> + Send;

    /// Names of the host's links that could be leftovers: not the host end
    /// of a veth whose peer is in another (a live container's) namespace.
    fn host_links(&self) -> impl Future<Output = Result<Vec<String>, NetworkError>> + Send;

    /// Enable forwarding; install the network's NAT and FORWARD rules once.
    fn ensure_nat(&self, net: &Network) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Remove every rule tagged for the bridge `bridge`.
    fn remove_nat(&self, bridge: &str) -> impl Future<Output = Result<(), NetworkError>> + Send;
}

/// The real kernel: rtnetlink for links, `iptables` for rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux;

impl Kernel for Linux {
    async fn ensure_bridge(&self, net: &Network) -> Result<u32, NetworkError> {
        let host = netlink::host()?;
        netlink::ensure_bridge(&host, &net.bridge_name, net.gateway, net.subnet.prefix()).await
    }

    async fn add_endpoint(
        &self,
        netns: &Path,
        net: &Network,
        bridge: u32,
        ep: &Endpoint,
    ) -> Result<(), NetworkError> {
        let ns_file = netlink::open_netns(netns)?;
        let mac = netlink::parse_mac(&ep.mac);
        let host = netlink::host()?;
        let t = Instant::now();
        // The socket inside the namespace needs a thread of its own (~1 ms
        // on a busy machine): make the pair meanwhile, guessing `eth0`,
        // which a container's first network gets.
        let first_try = async {
            let made =
                netlink::create_veth(&host, &ep.veth_host, bridge, &ns_file, "eth0", mac.clone())
                    .await;
            match made {
                // The index is remembered from the network's first attach:
                // say so plainly if the bridge went since.
                Err(e) => match netlink::link_index(&host, &net.bridge_name).await {
                    Ok(Some(index)) if index == bridge => Err(e),
                    _ => Err(NetworkError::LinkNotFound(net.bridge_name.clone())),
                },
                made => made,
            }
        };
        let (inside, made) = tokio::try_join!(netlink::in_netns(netns), first_try)?;
        timing::step("add_endpoint: socket in netns + veth", t);
        let ifname = if made {
            "eth0".to_owned()
        } else {
            // A later network: eth1, eth2… as Docker does.
            let names = netlink::link_names(&inside).await?;
            let ifname = (0..)
                .map(|n| format!("eth{n}"))
                .find(|n| !names.contains(n))
                .unwrap_or_else(|| "eth0".to_owned());
            if ifname == "eth0"
                || !netlink::create_veth(&host, &ep.veth_host, bridge, &ns_file, &ifname, mac)
                    .await?
            {
                return Err(NetworkError::LinkExists {
                    host: ep.veth_host.clone(),
                    container: ifname,
                });
            }
            ifname
        };
        netlink::configure_eth(&inside, &ifname, ep).await
    }

    async fn delete_link(&self, name: &str) -> Result<bool, NetworkError> {
        link_delete::delete_link(&netlink::host()?, name).await
    }

    async fn host_links(&self) -> Result<Vec<String>, NetworkError> {
        // Another berthd's running containers are not ours to sweep.
        netlink::local_link_names(&netlink::host()?).await
    }

    async fn ensure_nat(&self, net: &Network) -> Result<(), NetworkError> {
        let net = net.clone();
        blocking(move || nat::ensure(&net)).await
    }

    async fn remove_nat(&self, bridge: &str) -> Result<(), NetworkError> {
        let bridge = bridge.to_owned();
        blocking(move || nat::remove_tagged(&bridge)).await
    }
}

/// iptables is a blocking child process: keep it off the async workers.
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
