//! A registry served on a real loopback socket with a fresh root, and the
//! small client helpers the workflows share.

use std::net::SocketAddr;
use std::sync::Arc;

use berth_api::registry::{RegistryApp, app};
use berth_auth::{AuthConfig, AuthService};
use berth_content::ContentStore;
use berth_oci::{Algorithm, Digest};
use berth_registry::{Registry, RegistryConfig};
use berth_state::State;
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// A running registry. The temp root lives as long as this does.
pub struct Server {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A dir-storage plugin granted `store`, loaded into one manager per test
/// process (the component is compiled once, then comes from the cache).
fn dir_storage(store: &std::path::Path) -> Arc<dyn berth_content::BlobBackend> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static MANAGER: OnceLock<(berth_plugins::PluginManager, tempfile::TempDir)> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let (manager, _) = MANAGER.get_or_init(|| {
        let cache = tempfile::tempdir().unwrap();
        let m = berth_plugins::PluginManager::new(berth_plugins::ManagerOptions::new(cache.path()));
        (m, cache)
    });
    std::fs::create_dir_all(store).unwrap();
    let name = format!("dir-storage-{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let spec: berth_plugins::PluginSpec = serde_json::from_value(serde_json::json!({
        "name": name,
        "kind": "storage-backend",
        "source": berth_plugin_artifacts::DIR_STORAGE,
        "config": { "root": "/data" },
        "grants": { "dirs": [{ "host": store, "guest": "/data", "access": "rw" }] },
    }))
    .unwrap();
    let bytes = std::fs::read(berth_plugin_artifacts::DIR_STORAGE).unwrap();
    manager.load(spec, &bytes).unwrap();
    manager.storage_backend(&name).unwrap()
}

pub async fn start() -> Server {
    start_with_auth(|state| AuthService::open(state, AuthConfig::default()).unwrap()).await
}

/// A registry whose auth service `auth` makes, over the registry's state.
pub async fn start_with_auth(auth: impl FnOnce(&State) -> AuthService) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut content = ContentStore::open(dir.path().join("content"))
        .await
        .unwrap();
    if crate::STORAGE_PLUGIN {
        content = content.with_backend(dir_storage(&dir.path().join("plugin-store")));
    }
    let state = State::open(dir.path().join("state")).unwrap();
    let auth = auth(&state);
    let registry = Registry::new(content, state, RegistryConfig::default());
    let router = app(Arc::new(RegistryApp {
        registry,
        auth: Arc::new(auth),
        pushed: None,
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Server {
        addr,
        base: format!("http://{addr}"),
        client,
        _dir: dir,
    }
}

pub fn sha256(data: &[u8]) -> String {
    Digest::sha256_of(data).to_string()
}

pub fn sha512(data: &[u8]) -> String {
    let mut h = Algorithm::Sha512.hasher();
    h.update(data);
    h.finish().to_string()
}

pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// The first error code of a spec error body.
pub async fn error_code(r: Response) -> String {
    let v: serde_json::Value = r.json().await.unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

/// Assert the status and the spec error code of a failed request.
pub async fn expect_error(r: Response, status: u16, code: &str) {
    assert_eq!(r.status().as_u16(), status, "{:?}", r.url().to_string());
    assert!(
        header(&r, "content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    assert_eq!(error_code(r).await, code);
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolve a `Location` header as an HTTP client does: absolute URLs as
    /// they are, absolute paths against the server.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            assert!(
                location.starts_with('/'),
                "Location {location} is neither an absolute URL nor an absolute path"
            );
            self.url(location)
        }
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// POST + PUT; returns the digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        self.push_blob_as(repo, data, &d).await;
        d
    }

    pub async fn push_blob_as(&self, repo: &str, data: &[u8], digest: &str) {
        let r = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let loc = self.resolve(&header(&r, "location").unwrap());
        let r = self
            .client
            .put(loc)
            .query(&[("digest", digest)])
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "pushing blob {digest}");
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Push the blobs of a small OCI image and return (config, layer) digests.
    pub async fn push_image_blobs(&self, repo: &str, seed: &str) -> (Descr, Descr) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let layer = format!("layer bytes for {seed}").into_bytes();
        let c = self.push_blob(repo, config.as_bytes()).await;
        let l = self.push_blob(repo, &layer).await;
        (
            Descr::new(OCI_CONFIG, &c, config.len()),
            Descr::new(OCI_LAYER, &l, layer.len()),
        )
    }

    /// Push an OCI image manifest under `reference`; returns (digest, bytes).
    pub async fn push_image(&self, repo: &str, reference: &str, seed: &str) -> (String, Vec<u8>) {
        let (c, l) = self.push_image_blobs(repo, seed).await;
        let body = image_manifest(&c, &[l], "");
        let r = self
            .put_manifest(repo, reference, OCI_MANIFEST, &body)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        (sha256(&body), body)
    }

    /// Send a request with a path exactly as given (no client-side dot
    /// segment removal) and return the status and body.
    pub async fn raw(&self, method: &str, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

/// A descriptor for building test manifests.
#[derive(Clone)]
pub struct Descr {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Descr {
    pub fn new(media_type: &str, digest: &str, size: usize) -> Descr {
        Descr {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
        }
    }

    pub fn json(&self) -> String {
        format!(
            r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
            self.media_type, self.digest, self.size
        )
    }
}

/// An OCI image manifest with deliberately odd whitespace, so a server that
/// re-serialises instead of storing bytes is caught. `extra` is spliced in
/// before the closing brace (start it with a comma).
pub fn image_manifest(config: &Descr, layers: &[Descr], extra: &str) -> Vec<u8> {
    let layers: Vec<String> = layers.iter().map(Descr::json).collect();
    format!(
        "{{\n   \"schemaVersion\" : 2,\t\"mediaType\":\"{OCI_MANIFEST}\",\n  \"config\": {},\n \"layers\": [ {} ]{extra}  }}\n\n",
        config.json(),
        layers.join(" ,\n ")
    )
    .into_bytes()
}
