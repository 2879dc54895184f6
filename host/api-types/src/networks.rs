//! `/v1/networks`: user-defined bridge networks.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `POST /v1/networks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateNetwork {
    pub name: String,
    /// An IPv4 CIDR, e.g. `10.89.0.0/24`; one is picked if absent.
    #[serde(default)]
    pub subnet: Option<String>,
}

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Network {
    pub name: String,
    pub id: String,
    /// `bridge`.
    pub driver: String,
    /// An IPv4 CIDR.
    pub subnet: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Ipv4))]
    pub gateway: Ipv4Addr,
    pub bridge_name: String,
    /// User-defined networks resolve container names; `bridge` does not.
    pub user_defined: bool,
    /// Unix seconds.
    pub created: u64,
}

/// `GET /v1/networks/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkInspect {
    pub network: Network,
    pub endpoints: Vec<Endpoint>,
}

/// One container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub container_id: String,
    pub network: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Ipv4))]
    pub ip: Ipv4Addr,
    pub prefix: u8,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Ipv4))]
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub veth_host: String,
    pub aliases: Vec<String>,
    pub hostname: Option<String>,
    pub extra_hosts: Vec<ExtraHost>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub hosts_path: Option<PathBuf>,
}

/// An `--add-host name:ip` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtraHost {
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
}
