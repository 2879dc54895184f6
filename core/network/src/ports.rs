//! Published ports: `-p [ip:]hostport:containerport[/tcp|/udp]`.
//!
//! A userland proxy in the daemon (as Docker's docker-proxy) rather than
//! DNAT rules: a listener on the host address also answers on 127.0.0.1,
//! which DNAT in PREROUTING never sees, and it needs no per-kernel tuning
//! (`route_localnet`). The cost is a copy through user space, acceptable
//! for published ports; containers talking to each other never pass here.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::NetworkError;

/// How long a UDP client may stay silent before its flow is forgotten.
const UDP_IDLE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One `-p` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortSpec {
    /// `0.0.0.0` unless given: every host address, 127.0.0.1 included.
    pub host_ip: IpAddr,
    /// 0 asks the kernel for a free port.
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl FromStr for PortSpec {
    type Err = NetworkError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |reason| NetworkError::InvalidPort {
            spec: spec.to_owned(),
            reason,
        };
        let (ports, proto) = match spec.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some(_) => return Err(bad("protocol must be tcp or udp")),
            None => (spec, Proto::Tcp),
        };
        let port = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| bad("ports are numbers 0-65535"))
        };
        // rsplitn keeps an IPv6 host address ("[::1]:80:80") in one piece.
        let parts: Vec<&str> = ports.rsplitn(3, ':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [c] => (None, 0, port(c)?),
            [c, h] => (None, port(h)?, port(c)?),
            [c, h, ip] => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                let ip: IpAddr = ip.parse().map_err(|_| bad("bad host address"))?;
                let h = if h.is_empty() { 0 } else { port(h)? };
                (Some(ip), h, port(c)?)
            }
            _ => return Err(bad("too many ':'")),
        };
        if container_port == 0 {
            return Err(bad("the container port cannot be 0"));
        }
        Ok(PortSpec {
            host_ip: host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            host_port,
            container_port,
            proto,
        })
    }
}

/// A published port. Dropping it stops listening and closes every
/// connection it forwards.
#[derive(Debug)]
pub struct PortGuard {
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl PortGuard {
    /// Where the proxy listens (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listen on `spec`'s host address and forward to `container_ip`.
pub async fn publish(spec: &PortSpec, container_ip: IpAddr) -> Result<PortGuard, NetworkError> {
    let bind = SocketAddr::new(spec.host_ip, spec.host_port);
    let target = SocketAddr::new(container_ip, spec.container_port);
    let op = || format!("publishing {bind}/{} (is the port in use?)", spec.proto);
    let (local, task) = match spec.proto {
        Proto::Tcp => {
            let listener = TcpListener::bind(bind)
                .await
                .map_err(|source| NetworkError::Io { op: op(), source })?;
            let local = listener.local_addr().map_err(NetworkError::io(op()))?;
            (local, tokio::spawn(tcp_proxy(listener, target)))
        }
        Proto::Udp => {
            let socket = UdpSocket::bind(bind)
                .await
                .map_err(|source| NetworkError::Io { op: op(), source })?;
            let local = socket.local_addr().map_err(NetworkError::io(op()))?;
            (local, tokio::spawn(udp_proxy(Arc::new(socket), target)))
        }
    };
    tracing::info!(%local, %target, proto = %spec.proto, "published port");
    Ok(PortGuard { local, task })
}

async fn tcp_proxy(listener: TcpListener, target: SocketAddr) {
    // Connections live in this set, so aborting the proxy task drops them.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut client, peer)) => {
                    conns.spawn(async move {
                        match TcpStream::connect(target).await {
                            Ok(mut upstream) => {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            }
                            Err(e) => tracing::debug!(%peer, %target, error = %e, "published port: container refused"),
                        }
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%target, error = %e, "published port: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn udp_proxy(front: Arc<UdpSocket>, target: SocketAddr) {
    let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut replies = JoinSet::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<SocketAddr>();
    let mut buf = vec![0u8; 65535];
    loop {
        tokio::select! {
            received = front.recv_from(&mut buf) => {
                let Ok((n, client)) = received else { continue };
                let upstream = match flows.get(&client) {
                    Some(u) => u.clone(),
                    None => {
                        let Ok(u) = udp_upstream(target).await else { continue };
                        let u = Arc::new(u);
                        flows.insert(client, u.clone());
                        replies.spawn(udp_replies(u.clone(), front.clone(), client, done_tx.clone()));
                        u
                    }
                };
                if let Some(data) = buf.get(..n) {
                    let _ = upstream.send(data).await;
                }
            }
            Some(client) = done_rx.recv() => { flows.remove(&client); }
            Some(_) = replies.join_next(), if !replies.is_empty() => {}
        }
    }
}

async fn udp_upstream(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(target).await?;
    Ok(socket)
}

async fn udp_replies(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    done: mpsc::UnboundedSender<SocketAddr>,
) {
    let mut buf = vec![0u8; 65535];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
        if let Some(data) = buf.get(..n) {
            let _ = front.send_to(data, client).await;
        }
    }
    let _ = done.send(client);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() -> Result<(), NetworkError> {
        let p: PortSpec = "8080:80".parse()?;
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.proto),
            (IpAddr::from([0, 0, 0, 0]), 8080, 80, Proto::Tcp)
        );
        let p: PortSpec = "127.0.0.1:53:53/udp".parse()?;
        assert_eq!(
            (p.host_ip, p.host_port, p.proto),
            (IpAddr::from([127, 0, 0, 1]), 53, Proto::Udp)
        );
        let p: PortSpec = "[::1]:8443:443".parse()?;
        assert_eq!(
            p.host_ip,
            "::1"
                .parse::<IpAddr>()
                .map_err(|_| NetworkError::InvalidExtraHost(String::new()))?
        );
        let p: PortSpec = "80".parse()?;
        assert_eq!((p.host_port, p.container_port), (0, 80));
        assert!("80/sctp".parse::<PortSpec>().is_err());
        assert!("a:b".parse::<PortSpec>().is_err());
        assert!("1:2:3:4".parse::<PortSpec>().is_err());
        Ok(())
    }
}
