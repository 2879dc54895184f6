//! A small HTTP/1.1 client for the daemon's unix socket.

use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Where the daemon listens, from `--host unix:///path` or `BERTH_HOST`.
#[derive(Debug, Clone)]
pub struct Daemon {
    socket: PathBuf,
}

impl Daemon {
    pub fn from_host(host: &str) -> anyhow::Result<Daemon> {
        match host.strip_prefix("unix://") {
            Some(p) if !p.is_empty() => Ok(Daemon { socket: p.into() }),
            _ => bail!("--host {host:?} is not unix:///path/to/berth.sock"),
        }
    }

    /// One request on a fresh connection; the status and the body, unread.
    pub async fn request<B>(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: B,
    ) -> anyhow::Result<(http::StatusCode, Incoming)>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = UnixStream::connect(&self.socket).await.with_context(|| {
            format!(
                "connecting to berthd at {}; is it running? (set --host or BERTH_HOST)",
                self.socket.display()
            )
        })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "daemon connection closed");
            }
        });
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "berthd")
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)?;
        let resp = sender
            .send_request(req)
            .await
            .context("talking to berthd")?;
        Ok((resp.status(), resp.into_body()))
    }

    /// Send a request with an optional JSON body.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(http::StatusCode, Incoming)> {
        let bytes = match &body {
            Some(v) => Bytes::from(serde_json::to_vec(v)?),
            None => Bytes::new(),
        };
        self.request(method, path, "application/json", Full::new(bytes))
            .await
    }

    /// Send a file (or stdin) as the streamed request body.
    pub async fn send_stream<R>(
        &self,
        method: http::Method,
        path: &str,
        body: R,
    ) -> anyhow::Result<(http::StatusCode, Incoming)>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        let frames =
            tokio_util::io::ReaderStream::with_capacity(body, 256 * 1024).map_ok(Frame::data);
        self.request(method, path, "application/x-tar", StreamBody::new(frames))
            .await
    }

    /// Send a request and decode a JSON answer, turning error bodies into errors.
    pub async fn json(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let (status, body) = self.send(method, path, body).await?;
        json_of(status, body).await
    }

    /// [`Daemon::json`], decoded into one of the API's types.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        let value = self.json(method, path, body).await?;
        decode(value, path)
    }
}

/// Decode a JSON answer, turning error bodies into errors.
pub async fn json_of(
    status: http::StatusCode,
    body: Incoming,
) -> anyhow::Result<serde_json::Value> {
    let bytes = body.collect().await?.to_bytes();
    let value: serde_json::Value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    if !status.is_success() {
        let msg = serde_json::from_value::<berth_api_types::ErrorBody>(value.clone())
            .map(|e| e.message)
            .unwrap_or_else(|_| value.to_string());
        bail!("{msg}");
    }
    Ok(value)
}

/// A request body from one of the API's types.
pub fn body(request: &impl serde::Serialize) -> anyhow::Result<Option<serde_json::Value>> {
    Ok(Some(serde_json::to_value(request)?))
}

/// Decode a JSON answer into one of the API's types.
pub fn decode<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> anyhow::Result<T> {
    serde_json::from_value(value)
        .with_context(|| format!("the daemon's answer to {what} is not what this berth reads"))
}
