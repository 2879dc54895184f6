//! Link setup over rtnetlink: bridges, veth pairs, addresses and routes, in
//! the host's namespace or in a container's.
//!
//! A netlink socket belongs to the namespace it was created in, so to talk
//! to a container's namespace we create the socket on a short-lived thread
//! that has `setns`-ed there; the socket then works from any thread, and the
//! daemon's own threads never leave the host namespace.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use futures::TryStreamExt;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlag, LinkInfo, LinkMessage,
};
use rtnetlink::Handle;

use std::time::Instant;

use crate::records::Endpoint;
use crate::{NetworkError, timing};

pub(crate) const ENODEV: i32 = -19;
const EEXIST: i32 = -17;

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get()),
        _ => None,
    }
}

/// A netlink connection in the daemon's (host) namespace.
pub(crate) fn host() -> Result<Handle, NetworkError> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(NetworkError::io("netlink socket"))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A netlink connection inside the namespace at `netns` (`/proc/PID/ns/net`
/// or a bind-mounted namespace file).
pub(crate) async fn in_netns(netns: &Path) -> Result<Handle, NetworkError> {
    let file = open_netns(netns)?;
    let runtime = tokio::runtime::Handle::current();
    let path = netns.to_path_buf();
    let made = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            // The socket registers with the runtime's reactor on creation.
            let _enter = runtime.enter();
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetworkError::Netns {
                    path: path.clone(),
                    source: e.into(),
                }
            })?;
            rtnetlink::new_connection().map_err(NetworkError::io("netlink socket in namespace"))
        })
        .join()
    })
    .await;
    let (conn, handle, _) = match made {
        Ok(Ok(r)) => r?,
        _ => {
            return Err(NetworkError::Io {
                op: "netlink setup thread".into(),
                source: std::io::Error::other("thread panicked"),
            });
        }
    };
    tokio::spawn(conn);
    Ok(handle)
}

pub(crate) fn open_netns(netns: &Path) -> Result<File, NetworkError> {
    File::open(netns).map_err(|source| NetworkError::Netns {
        path: netns.to_path_buf(),
        source,
    })
}

/// The index of link `name`, if it exists.
pub(crate) async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(NetworkError::Netlink {
            op: format!("looking up link {name}"),
            source: Box::new(e),
        }),
    }
}

async fn require_index(handle: &Handle, name: &str) -> Result<u32, NetworkError> {
    link_index(handle, name)
        .await?
        .ok_or_else(|| NetworkError::LinkNotFound(name.to_owned()))
}

async fn all_links(handle: &Handle) -> Result<Vec<LinkMessage>, NetworkError> {
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(NetworkError::netlink("listing links"))
}

/// Names of every link in the namespace of `handle`.
pub(crate) async fn link_names(handle: &Handle) -> Result<Vec<String>, NetworkError> {
    let links = all_links(handle).await?;
    Ok(links
        .iter()
        .filter_map(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
        .collect())
}

/// Names of the host's links, leaving out those whose peer lives in another
/// network namespace (`IFLA_LINK_NETNSID`): the host end of a running
/// container's veth, whichever daemon's container it is. A dead
/// container's pair goes away with its namespace, so what is left out here
/// is never a leftover.
pub(crate) async fn local_link_names(handle: &Handle) -> Result<Vec<String>, NetworkError> {
    let links = all_links(handle).await?;
    Ok(links
        .iter()
        .filter(|l| {
            !l.attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::NetnsId(_)))
        })
        .filter_map(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
        .collect())
}

/// Create the bridge if missing, give it the gateway address and bring it
/// up. Idempotent, and safe against a concurrent creator.
pub(crate) async fn ensure_bridge(
    handle: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
) -> Result<u32, NetworkError> {
    if link_index(handle, name).await?.is_none() {
        match handle.link().add().bridge(name.to_owned()).execute().await {
            Ok(()) => tracing::info!(bridge = name, "created bridge"),
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => {
                return Err(NetworkError::Netlink {
                    op: format!("creating bridge {name}"),
                    source: Box::new(e),
                });
            }
        }
    }
    let index = require_index(handle, name).await?;
    match handle
        .address()
        .add(index, IpAddr::V4(gateway), prefix)
        .execute()
        .await
    {
        Ok(()) => {}
        Err(e) if errno(&e) == Some(EEXIST) => {}
        Err(e) => {
            return Err(NetworkError::Netlink {
                op: format!("adding {gateway}/{prefix} to {name}"),
                source: Box::new(e),
            });
        }
    }
    handle
        .link()
        .set(index)
        .up()
        .execute()
        .await
        .map_err(NetworkError::netlink(format!("bringing up {name}")))?;
    Ok(index)
}

/// Create a veth pair in one request: the host end `host_name`, enslaved
/// to the bridge and up, and the container end made directly inside the
/// namespace `netns` as `ifname`, with `mac`. Making it there rather than
/// moving it in afterwards matters: the kernel's move of a device between
/// namespaces waits for an RCU barrier (`rcu_barrier()` in
/// `__dev_change_net_namespace`), which cost ~30 ms per container here,
/// holding the request (and so an async worker) all that time. The
/// container end cannot be brought up in the same request (the kernel
/// configures it before the pair is joined, and `veth_open` refuses).
/// `false` when a link of one of the two names exists already.
pub(crate) async fn create_veth(
    handle: &Handle,
    host_name: &str,
    bridge_index: u32,
    netns: &File,
    ifname: &str,
    mac: Option<Vec<u8>>,
) -> Result<bool, NetworkError> {
    use std::os::fd::AsRawFd;

    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(ifname.to_owned()));
    if let Some(mac) = mac {
        peer.attributes.push(LinkAttribute::Address(mac));
    }
    peer.attributes
        .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
    let mut request = handle.link().add().name(host_name.to_owned());
    let message = request.message_mut();
    message.header.flags.push(LinkFlag::Up);
    message.header.change_mask.push(LinkFlag::Up);
    message
        .attributes
        .push(LinkAttribute::Controller(bridge_index));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    let t = Instant::now();
    let created = request.execute().await;
    timing::step("veth: create pair (peer in netns, host end on bridge)", t);
    match created {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(false),
        Err(e) => Err(NetworkError::Netlink {
            op: format!("creating veth {host_name} with {ifname} in the container"),
            source: Box::new(e),
        }),
    }
}

/// `lo` has this index in every namespace (`LOOPBACK_IFINDEX`).
const LOOPBACK_INDEX: u32 = 1;

/// Bring `lo` up in the namespace of `handle`.
pub(crate) async fn loopback_up(handle: &Handle) -> Result<(), NetworkError> {
    handle
        .link()
        .set(LOOPBACK_INDEX)
        .up()
        .execute()
        .await
        .map_err(NetworkError::netlink("bringing up lo"))
}

/// Inside the container: give `ifname` its address, bring it and `lo` up,
/// and route everything via the gateway unless an earlier network already
/// gave the container a default route.
pub(crate) async fn configure_eth(
    handle: &Handle,
    ifname: &str,
    ep: &Endpoint,
) -> Result<(), NetworkError> {
    let (ip, prefix, gateway) = (ep.ip, ep.prefix, ep.gateway);
    let t = Instant::now();
    let index = require_index(handle, ifname).await?;
    timing::step("eth: index", t);
    let t = Instant::now();
    handle
        .address()
        .add(index, IpAddr::V4(ip), prefix)
        .execute()
        .await
        .map_err(NetworkError::netlink(format!(
            "adding {ip}/{prefix} to {ifname}"
        )))?;
    timing::step("eth: address", t);
    let t = Instant::now();
    handle
        .link()
        .set(index)
        .up()
        .execute()
        .await
        .map_err(NetworkError::netlink(format!("bringing up {ifname}")))?;
    timing::step("eth: up", t);
    let t = Instant::now();
    loopback_up(handle).await?;
    timing::step("eth: lo up", t);
    let t = Instant::now();
    let route = handle.route().add().v4().gateway(gateway).execute().await;
    timing::step("eth: default route", t);
    match route {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(NetworkError::Netlink {
            op: format!("adding default route via {gateway}"),
            source: Box::new(e),
        }),
    }
}

pub(crate) fn parse_mac(mac: &str) -> Option<Vec<u8>> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    (bytes.len() == 6).then_some(bytes)
}
