//! `/v1/networks`: user-defined bridge networks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{ControlError, Shared};

use berth_api_types as api;
pub use berth_api_types::CreateNetwork;

/// A network as the API shows it, field by field, so a field added to the
/// record and not to `berth_api_types` fails to compile here.
fn wire(n: berth_network::Network) -> api::Network {
    api::Network {
        name: n.name,
        id: n.id,
        driver: match n.driver {
            berth_network::Driver::Bridge => "bridge".to_string(),
        },
        subnet: n.subnet.to_string(),
        gateway: n.gateway,
        bridge_name: n.bridge_name,
        user_defined: n.user_defined,
        created: n.created,
    }
}

fn wire_endpoint(e: berth_network::Endpoint) -> api::Endpoint {
    api::Endpoint {
        container_id: e.container_id,
        network: e.network,
        ip: e.ip,
        prefix: e.prefix,
        gateway: e.gateway,
        mac: e.mac,
        veth_host: e.veth_host,
        aliases: e.aliases,
        hostname: e.hostname,
        extra_hosts: e
            .extra_hosts
            .into_iter()
            .map(|h| api::ExtraHost {
                name: h.name,
                ip: h.ip,
            })
            .collect(),
        hosts_path: e.hosts_path,
    }
}

fn net_err(e: berth_network::NetworkError) -> ControlError {
    ControlError::bad_request(e.to_string())
}

pub(crate) async fn list(State(app): Shared) -> Result<impl IntoResponse, ControlError> {
    let list = app.networks.list().map_err(net_err)?;
    Ok(axum::Json(list.into_iter().map(wire).collect::<Vec<_>>()))
}

pub(crate) async fn create(
    State(app): Shared,
    axum::Json(req): axum::Json<CreateNetwork>,
) -> Result<impl IntoResponse, ControlError> {
    let subnet = req
        .subnet
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|e: berth_network::NetworkError| ControlError::bad_request(e.to_string()))
        })
        .transpose()?;
    let net = app.networks.create(&req.name, subnet).map_err(net_err)?;
    Ok((StatusCode::CREATED, axum::Json(wire(net))))
}

pub(crate) async fn inspect(
    State(app): Shared,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    let i = app
        .networks
        .inspect(&name)
        .map_err(|e| ControlError::not_found(e.to_string()))?;
    Ok(axum::Json(api::NetworkInspect {
        network: wire(i.network),
        endpoints: i.endpoints.into_iter().map(wire_endpoint).collect(),
    }))
}

pub(crate) async fn remove(
    State(app): Shared,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    app.networks.remove(&name).await.map_err(net_err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_serializes_as_the_network_records_do() {
        let net = berth_network::Network {
            name: "n1".into(),
            id: "abc".into(),
            driver: berth_network::Driver::Bridge,
            subnet: "10.89.0.0/24".parse().unwrap(),
            gateway: "10.89.0.1".parse().unwrap(),
            bridge_name: "berth-abc".into(),
            user_defined: true,
            created: 7,
        };
        let ep = berth_network::Endpoint {
            container_id: "c1".into(),
            network: "n1".into(),
            ip: "10.89.0.2".parse().unwrap(),
            prefix: 24,
            gateway: "10.89.0.1".parse().unwrap(),
            mac: "02:00:00:00:00:01".into(),
            veth_host: "veth0".into(),
            aliases: vec!["web".into()],
            hostname: Some("web".into()),
            extra_hosts: vec![berth_network::ExtraHost {
                name: "db".into(),
                ip: "::1".parse().unwrap(),
            }],
            hosts_path: Some("/run/hosts".into()),
        };
        // List and create answered with the record itself: the same bytes.
        assert_eq!(
            serde_json::to_string(&wire(net.clone())).unwrap(),
            serde_json::to_string(&net).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&wire_endpoint(ep.clone())).unwrap(),
            serde_json::to_string(&ep).unwrap()
        );
        // Inspect answered with a `json!` map (keys sorted): the same JSON.
        let before = serde_json::json!({ "network": net, "endpoints": [ep] });
        let now = api::NetworkInspect {
            network: wire(net),
            endpoints: vec![wire_endpoint(ep)],
        };
        assert_eq!(serde_json::to_value(&now).unwrap(), before);
    }
}
