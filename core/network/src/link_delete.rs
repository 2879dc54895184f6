//! Deleting a link without waiting for the kernel to free it.
//!
//! The kernel handles an `RTM_DELLINK` inside the sender's `send`: it
//! unlists the link (gone from netlink dumps, then from `/sys/class/net`)
//! within a millisecond or so, but before it answers it waits for an RCU
//! barrier (`netdev_run_todo`), a grace period that took ~30 ms per link
//! here. Nothing depends on that second part: the name and the address are
//! free once the link is unlisted. So the request goes out on a blocking
//! thread with a socket of its own, and the caller returns as soon as the
//! link is no longer visible anywhere (or as soon as the kernel answers,
//! whichever is first); the thread finishes the wait alone.

use std::path::Path;
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use rtnetlink::Handle;

use crate::netlink::{ENODEV, link_index};
use crate::{NetworkError, timing};

/// How often to look whether the link is gone; it takes ~1 ms.
const POLL: Duration = Duration::from_micros(250);

/// Delete link `name`; returns whether it existed, once it is no longer
/// visible (`ip link`, `/sys/class/net`). Deleting one end of a veth pair
/// deletes both.
pub(crate) async fn delete_link(handle: &Handle, name: &str) -> Result<bool, NetworkError> {
    let t = Instant::now();
    let Some(index) = link_index(handle, name).await? else {
        return Ok(false);
    };
    let op = format!("deleting link {name}");
    let request_op = op.clone();
    let mut answer = tokio::task::spawn_blocking(move || request_delete(index, &request_op));
    let sysfs = Path::new("/sys/class/net").join(name);
    loop {
        tokio::select! {
            done = &mut answer => {
                timing::step("delete: kernel answered", t);
                return done.map_err(|e| NetworkError::Io {
                    op,
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
            () = tokio::time::sleep(POLL) => {}
        }
        // Another link may take the name at once: only ours counts.
        let listed = link_index(handle, name).await? == Some(index);
        if !listed && !sysfs.exists() {
            timing::step("delete: link gone from view", t);
            return Ok(true);
        }
    }
}

/// One `RTM_DELLINK` for link `index` on a blocking socket; `false` when
/// the link was gone already.
fn request_delete(index: u32, op: &str) -> Result<bool, NetworkError> {
    let io = |source| NetworkError::Io {
        op: op.to_owned(),
        source,
    };
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(io)?;
    socket.bind_auto().map_err(io)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
    let mut link = LinkMessage::default();
    link.header.index = index;
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::DelLink(link));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    request.header.sequence_number = 1;
    request.finalize();
    let mut buf = vec![0u8; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0).map_err(io)?;
    loop {
        let (reply, _) = socket.recv_from_full().map_err(io)?;
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ))
        })?;
        if message.header.sequence_number != request.header.sequence_number {
            continue;
        }
        if let NetlinkPayload::Error(e) = message.payload {
            return match e.code.map(|c| c.get()) {
                None => Ok(true),
                Some(ENODEV) => Ok(false),
                Some(_) => Err(NetworkError::Netlink {
                    op: op.to_owned(),
                    source: Box::new(rtnetlink::Error::NetlinkError(e)),
                }),
            };
        }
    }
}
