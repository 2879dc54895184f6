//! Container networking: `--network none | host | <bridge network>`.
//!
//! This crate owns the network and endpoint records (in sled, through
//! `berth-state`), address allocation, link setup over netlink (Linux
//! bridge, veth pairs, addresses, routes), egress NAT rules, published ports
//! (a userland proxy), and the contents of a container's `/etc/hosts` and
//! `/etc/resolv.conf`. It is handed a network namespace file and never
//! creates processes or namespaces itself, nor shells out for link setup.
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_network::NetworkError> {
//! use berth_network::{EndpointSpec, NetworkConfig, Networks};
//! let state = berth_state::State::open("/var/lib/berth/state")?;
//! let nets = Networks::open(&state, NetworkConfig::default())?;
//! nets.create("web", None)?;
//! let spec = EndpointSpec { aliases: vec!["api".into()], ..Default::default() };
//! let ep = nets.attach("/proc/4242/ns/net".as_ref(), "c0ffee", "web", spec).await?;
//! let _port = berth_network::publish(&"8080:80".parse()?, ep.ip.into()).await?;
//! nets.detach("c0ffee", "web").await?;
//! # Ok(()) }
//! ```

mod error;
mod files;
mod kernel;
mod link_delete;
mod manager;
mod nat;
mod netlink;
mod ports;
mod records;
mod store;
mod timing;

pub use error::NetworkError;
pub use files::{parse_extra_hosts, render_hosts, resolv_conf, write_in_place};
pub use kernel::{Kernel, Linux};
pub use manager::{NetworkInspect, Networks, host_links, links_in, setup_none};
pub use nat::masquerade_installed;
pub use ports::{PortGuard, PortSpec, Proto, publish};
pub use records::{
    DEFAULT_NETWORK, Driver, Endpoint, ExtraHost, Network, NetworkConfig, NetworkMode, Subnet,
};
pub use store::{EndpointSpec, NetworkStore};
