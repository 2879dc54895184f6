//! The WASI context of a plugin: nothing preopened, no environment, no
//! arguments, no network, stdout and stderr captured; then exactly what the
//! operator granted.
//!
//! Granted directories are opened as they are: wasmtime-wasi opens files in
//! them with blocking `openat` calls on a blocking pool and offers no way to
//! refuse a FIFO or a device or to open without blocking, so a FIFO there
//! can hold a thread for ever. That is bounded elsewhere: the plugin's file
//! operations run on its own small pool, the caller gets its answer at the
//! deadline, and the plugin is refused while too many calls are stuck
//! (`runner`, `plugin`).

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::PluginError;
use crate::spec::{Access, PluginSpec};
use crate::state::Output;

/// Builds the sandbox for one store of `spec`'s plugin.
pub(crate) fn wasi_ctx(
    spec: &PluginSpec,
    net: &Arc<Vec<SocketAddr>>,
    stdout: &Output,
    stderr: &Output,
) -> Result<WasiCtx, PluginError> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(stdout.pipe.clone()).stderr(stderr.pipe.clone());
    for dir in &spec.grants.dirs {
        let perms = match dir.access {
            Access::Ro => FsPerms::ReadOnly,
            Access::Rw => FsPerms::ReadWrite,
        };
        b.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| PluginError::Config {
                plugin: spec.name.clone(),
                message: format!("opening granted directory {}: {e}", dir.host.display()),
            })?;
    }
    for name in &spec.grants.env {
        match std::env::var(name) {
            Ok(value) => {
                b.env(name, value);
            }
            Err(_) => {
                tracing::debug!(plugin = %spec.name, variable = %name, "granted variable is not set in berthd's environment");
            }
        }
    }
    if !net.is_empty() {
        let allowed = Arc::clone(net);
        b.allow_tcp(true).allow_udp(true);
        b.socket_addr_check(move |addr, use_| {
            let ok = match use_ {
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => allowed.contains(&addr),
                // A connect binds implicitly to the wildcard address first;
                // an explicit bind to anything else (a listener) is refused.
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                    addr.ip().is_unspecified() && addr.port() == 0
                }
                _ => false,
            };
            Box::pin(async move { ok })
        });
    } else {
        b.allow_tcp(false).allow_udp(false);
    }
    b.allow_ip_name_lookup(spec.grants.dns);
    Ok(b.build())
}
