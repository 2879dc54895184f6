//! Loopback ports and readiness polling.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago (bound to :0, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A loopback address with a free port.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// Polls `check` every 50 ms until it returns `Ok(true)`, an error, or `timeout` passes.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True if `GET /v2/` on `addr` answers 200 or 401 (a registry that is up).
pub fn registry_ready(addr: SocketAddr) -> bool {
    match crate::http::Request::get("/v2/").send(addr) {
        Ok(resp) => resp.status == 200 || resp.status == 401,
        Err(_) => false,
    }
}
