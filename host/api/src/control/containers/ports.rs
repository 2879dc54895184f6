//! Published ports (`-p [ip:]host:container[/udp]`): a proxy in the daemon
//! per port, as Docker's docker-proxy, so they answer on 127.0.0.1 too. The
//! proxies live as long as the container runs; a restarted daemon opens
//! them again for the containers still running.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_network::{PortGuard, PortSpec};

use super::record::{ContainerRecord, Status, status_of, tree};
use crate::control::{ControlApp, ControlError};

/// The open proxies, by container id.
#[derive(Default)]
pub struct Ports(Mutex<HashMap<String, Vec<PortGuard>>>);

impl Ports {
    fn keep(&self, id: &str, guards: Vec<PortGuard>) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(id.to_string()).or_default().extend(guards);
        }
    }

    /// Close a container's proxies.
    pub fn close(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

pub(crate) fn parse(specs: &[String]) -> Result<Vec<PortSpec>, ControlError> {
    specs
        .iter()
        .map(|s| {
            s.parse().map_err(|e: berth_network::NetworkError| {
                ControlError::bad_request(format!("-p {s:?}: {e}"))
            })
        })
        .collect()
}

/// Open the proxies of `record` to its address on its network.
pub(crate) async fn open(app: &ControlApp, record: &ContainerRecord) -> Result<(), ControlError> {
    if record.publish.is_empty() {
        return Ok(());
    }
    let endpoints = app
        .networks
        .store()
        .container_endpoints(&record.id)
        .map_err(ControlError::internal)?;
    let ip = endpoints.first().map(|e| e.ip).ok_or_else(|| {
        ControlError::bad_request(format!(
            "container {} has no network address to publish ports to (use a bridge network)",
            record.name
        ))
    })?;
    let mut guards = Vec::new();
    for spec in parse(&record.publish)? {
        guards.push(
            berth_network::publish(&spec, std::net::IpAddr::V4(ip))
                .await
                .map_err(|e| {
                    ControlError::new(
                        axum::http::StatusCode::CONFLICT,
                        "port_in_use",
                        e.to_string(),
                    )
                })?,
        );
    }
    app.ports.keep(&record.id, guards);
    Ok(())
}

/// At daemon start: reopen the ports of containers that are still running.
pub async fn reopen_all(app: &ControlApp) {
    let Ok(t) = tree(app) else { return };
    let Ok(all) = t.list::<ContainerRecord>() else {
        return;
    };
    for (_, r) in all {
        if matches!(status_of(&r.dir), Status::Running { .. })
            && let Err(e) = open(app, &r).await
        {
            tracing::warn!(container = %r.name, error = %e, "reopening published ports");
        }
    }
}
