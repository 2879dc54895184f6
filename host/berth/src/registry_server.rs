//! The registry endpoint's HTTP/1.1 server. `axum::serve` leaves hyper's
//! read buffer at its default ceiling of about 400 KiB per connection, and a
//! streamed upload fills it: under 16 concurrent skopeo pushes berthd peaked
//! at 41 MiB with it and at 29 MiB with 64 KiB, pushing no slower
//! (`bench/registry.sh`).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// hyper's read buffer also bounds a request's head; 64 KiB is far above
/// any registry request's (nginx allows 8 KiB by default).
const READ_BUFFER: usize = 64 * 1024;

/// Serve `app` on `listener` until `shutdown` completes, then let the
/// requests in flight finish, as `axum::serve(..).with_graceful_shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.max_buf_size(READ_BUFFER);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: the listener is fine,
                    // and another try soon may succeed (axum::serve does so).
                    tracing::warn!(error = %e, "accepting a registry connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without TCP_NODELAY a streamed response's first bytes can wait out
        // the client's delayed ACK (tens of ms per request).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        let conn =
            builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "registry connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
