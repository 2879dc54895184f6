//! The fastest a registry could look through a given client on this
//! machine: a server that speaks just enough of the OCI Distribution
//! protocol for `skopeo copy` and does no work. Pushed bodies are read and
//! dropped (no hash, no disk); pulls are served from one OCI layout held in
//! memory. `bench/registry.sh --ceiling` runs the same skopeo copies against
//! it, so the ratio a real server can reach over docker-registry is bounded
//! by what this one gets.
//!
//!   cargo run --release -p berth-api --example registry_ceiling -- ADDR LAYOUT
//!
//! ADDR is a loopback address such as 127.0.0.1:5099; LAYOUT an OCI image
//! layout whose first manifest is served for every repository and tag. Not
//! a registry: it checks nothing and keeps nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

struct Layout {
    manifest: Bytes,
    manifest_type: String,
    manifest_digest: String,
    blobs: HashMap<String, Bytes>,
    uploads: AtomicU64,
}

fn load(dir: &std::path::Path) -> Result<Layout, String> {
    let read =
        |p: std::path::PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
    let index: serde_json::Value = serde_json::from_slice(&read(dir.join("index.json"))?)
        .map_err(|e| format!("index.json: {e}"))?;
    let desc = &index["manifests"][0];
    let digest = desc["digest"]
        .as_str()
        .ok_or("index.json has no manifests")?;
    let blob_path = |d: &str| dir.join("blobs").join(d.replace(':', "/"));
    let manifest = read(blob_path(digest))?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| format!("manifest: {e}"))?;
    let mut blobs = HashMap::new();
    let layers = parsed["layers"].as_array().cloned().unwrap_or_default();
    for d in layers.iter().chain([&parsed["config"]]) {
        let d = d["digest"].as_str().ok_or("a descriptor has no digest")?;
        blobs.insert(d.to_string(), Bytes::from(read(blob_path(d))?));
    }
    Ok(Layout {
        manifest: Bytes::from(manifest),
        manifest_type: desc["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string(),
        manifest_digest: digest.to_string(),
        blobs,
        uploads: AtomicU64::new(0),
    })
}

async fn drain(body: Body) -> u64 {
    let mut stream = body.into_data_stream();
    let mut n = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        n += chunk.len() as u64;
    }
    n
}

fn status(code: StatusCode, headers: Vec<(header::HeaderName, String)>, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = code;
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

async fn serve(State(l): State<Arc<Layout>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let digest_h = header::HeaderName::from_static("docker-content-digest");
    let Some(rest) = path.strip_prefix("/v2/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if rest.is_empty() {
        return StatusCode::OK.into_response();
    }
    if let Some((repo, _)) = rest.split_once("/blobs/uploads/") {
        let n = drain(req.into_body()).await;
        return match method {
            Method::POST => {
                let id = l.uploads.fetch_add(1, Ordering::Relaxed);
                let loc = format!("/v2/{repo}/blobs/uploads/u{id}");
                status(
                    StatusCode::ACCEPTED,
                    vec![(header::LOCATION, loc), (header::RANGE, "0-0".into())],
                    Body::empty(),
                )
            }
            Method::PATCH => status(
                StatusCode::ACCEPTED,
                vec![
                    (header::LOCATION, path.clone()),
                    (header::RANGE, format!("0-{}", n.saturating_sub(1))),
                ],
                Body::empty(),
            ),
            Method::PUT => {
                let d = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("digest="))
                    .unwrap_or("");
                let d = d.replace("%3A", ":").replace("%3a", ":");
                status(
                    StatusCode::CREATED,
                    vec![
                        (header::LOCATION, format!("/v2/{repo}/blobs/{d}")),
                        (digest_h, d),
                    ],
                    Body::empty(),
                )
            }
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        };
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        return match (method, l.blobs.get(digest)) {
            // Every push goes to a fresh repository: nothing exists yet, so
            // every byte is sent (pulls only GET blobs).
            (Method::HEAD, _) => StatusCode::NOT_FOUND.into_response(),
            (Method::GET, Some(b)) => status(
                StatusCode::OK,
                vec![
                    (header::CONTENT_LENGTH, b.len().to_string()),
                    (header::CONTENT_TYPE, "application/octet-stream".into()),
                    (digest_h, digest.to_string()),
                ],
                Body::from(b.clone()),
            ),
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        return match method {
            Method::PUT => {
                let mut h = berth_oci::Algorithm::Sha256.hasher();
                let mut stream = req.into_body().into_data_stream();
                while let Some(Ok(chunk)) = stream.next().await {
                    h.update(&chunk);
                }
                let d = h.finish().to_string();
                status(
                    StatusCode::CREATED,
                    vec![
                        (
                            header::LOCATION,
                            format!("/v2/{repo}/manifests/{reference}"),
                        ),
                        (digest_h, d),
                    ],
                    Body::empty(),
                )
            }
            Method::GET | Method::HEAD => {
                let body = if method == Method::GET {
                    Body::from(l.manifest.clone())
                } else {
                    Body::empty()
                };
                status(
                    StatusCode::OK,
                    vec![
                        (header::CONTENT_LENGTH, l.manifest.len().to_string()),
                        (header::CONTENT_TYPE, l.manifest_type.clone()),
                        (digest_h, l.manifest_digest.clone()),
                    ],
                    body,
                )
            }
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        };
    }
    StatusCode::NOT_FOUND.into_response()
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, layout] = args.as_slice() else {
        return Err("usage: registry_ceiling ADDR LAYOUT".into());
    };
    let layout = Arc::new(load(std::path::Path::new(layout))?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listen on {addr}: {e}"))?;
    let app = Router::new().fallback(serve).with_state(layout);
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("serve: {e}"))
}
