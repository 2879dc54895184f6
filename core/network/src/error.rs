use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What went wrong while setting up or tearing down container networking.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    State(#[from] berth_state::StateError),
    #[error("network {0:?} not found; list networks with `berth network ls`")]
    NotFound(String),
    #[error("network {0:?} already exists")]
    Exists(String),
    #[error("network {0:?} is predefined and cannot be removed")]
    Predefined(String),
    #[error(
        "network {name:?} still has {count} endpoint(s); stop or disconnect its containers first"
    )]
    InUse { name: String, count: usize },
    #[error(
        "invalid network name {0:?}: use 1-64 characters from [A-Za-z0-9_.-], starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("invalid hostname or alias {0:?}: use 1-253 characters from [A-Za-z0-9_.-]")]
    InvalidHostname(String),
    #[error("network {network:?} has no free addresses left in {subnet}")]
    PoolExhausted { network: String, subnet: String },
    #[error("no free /24 left in the address pool {0}; configure a larger pool")]
    NoFreeSubnet(String),
    #[error("container {container_id} is already attached to network {network:?}")]
    AlreadyAttached {
        container_id: String,
        network: String,
    },
    #[error("container {container_id} is not attached to network {network:?}")]
    NotAttached {
        container_id: String,
        network: String,
    },
    #[error("invalid subnet {0:?}: expected a.b.c.d/prefix with prefix 8..=30")]
    InvalidSubnet(String),
    #[error("address {ip} is outside subnet {subnet}")]
    OutsideSubnet { ip: Ipv4Addr, subnet: String },
    #[error(
        "invalid port mapping {spec:?}: {reason}; expected [ip:]hostport:containerport[/tcp|/udp]"
    )]
    InvalidPort { spec: String, reason: &'static str },
    #[error("invalid --add-host {0:?}: expected name:ip")]
    InvalidExtraHost(String),
    #[error("netlink: {op}: {source}")]
    Netlink {
        op: String,
        // Boxed: rtnetlink's error carries a whole netlink message.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("link {0:?} not found")]
    LinkNotFound(String),
    #[error(
        "cannot create veth {host}: a link of that name exists on the host, or {container} exists in the container; remove the stray link (`ip link del {host}`)"
    )]
    LinkExists { host: String, container: String },
    #[error("opening network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`iptables {args}` failed: {stderr}; is the iptables package installed?")]
    Iptables { args: String, stderr: String },
}

impl NetworkError {
    pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
        let op = op.into();
        move |source| NetworkError::Io { op, source }
    }

    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
        let op = op.into();
        move |source| NetworkError::Netlink {
            op,
            source: Box::new(source),
        }
    }
}
