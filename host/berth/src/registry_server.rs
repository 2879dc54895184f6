//! berthd's HTTP/1.1 server on TCP, for the registry endpoint and the
//! control API's `--control-listen`. `axum::serve` leaves hyper's read
//! buffer at its default ceiling of about 400 KiB per connection, and a
//! streamed upload fills it: under 16 concurrent skopeo pushes berthd peaked
//! at 41 MiB with it and at 29 MiB with 64 KiB, pushing no slower
//! (`bench/registry.sh`). It sets no header timeout either. Each request
//! carries the peer's address as `ConnectInfo<SocketAddr>`, which the
//! failed-login limit counts by.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// hyper's read buffer also bounds a request's head; 64 KiB is far above
/// any registry request's (nginx allows 8 KiB by default).
const READ_BUFFER: usize = 64 * 1024;

/// How long a client may take to send a request's head. Without it a
/// client that trickles headers (slowloris) holds a connection and its task
/// for ever; `axum::serve` sets no timer, so it had none.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `app` on `listener` until `shutdown` completes, then let the
/// requests in flight finish, as `axum::serve(..).with_graceful_shutdown`.
/// A connection whose request head is not complete within `header_timeout`
/// is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(READ_BUFFER)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: the listener is fine,
                    // and another try soon may succeed (axum::serve does so).
                    tracing::warn!(error = %e, "accepting a connection");
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
        let app = app.clone();
        let service = tower::service_fn(move |mut req: axum::extract::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
        let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/v2/", axum::routing::get(|| async { "{}" }))
            .route(
                "/peer",
                axum::routing::get(
                    |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                        peer.ip().to_string()
                    },
                ),
            );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            app,
            Duration::from_millis(200),
            async move {
                let _ = stopped.await;
            },
        ));

        // A whole request is served.
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        ok.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        // Handlers learn the peer's address (the failed-login limit counts by it).
        let mut peer = tokio::net::TcpStream::connect(addr).await.unwrap();
        peer.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        peer.read_to_string(&mut answer).await.unwrap();
        assert!(answer.ends_with("127.0.0.1"), "{answer}");

        // A head that never ends is dropped after the timeout, not held.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest))
            .await
            .expect("the server should close a connection whose head never ends");
        assert!(closed.is_ok() || rest.is_empty(), "{closed:?}");

        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
