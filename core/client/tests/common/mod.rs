//! A real CNCF Distribution registry (`docker-registry`) per test, on a free
//! loopback port with its own storage and config, killed on drop; and a
//! directory-backed blob store implementing the client's source and sink.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

pub mod faulty_proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_client::{
    BlobSink, BlobSource, BoxError, BoxReader, ClientConfig, CredentialStore, NoProgress, Progress,
    RegistryClient,
};
use berth_oci::Digest;
use tokio::io::AsyncWriteExt;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_inner(None)
    }

    /// With `auth: htpasswd` for one user (bcrypt, as htpasswd -B writes).
    pub fn start_with_user(user: &str, pass: &str) -> Registry {
        Self::start_inner(Some((user, pass)))
    }

    fn start_inner(user: Option<(&str, &str)>) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is required for these tests (apt-get install docker-registry)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((u, p)) = user {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apache2-utils) is required for auth tests");
            assert!(out.status.success(), "htpasswd failed");
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                path.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: berth-test-secret\n{auth}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut reg = Registry { child, addr, dir };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited early ({status}): {}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer /v2/ within 20 s: {}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where Distribution's filesystem driver keeps a blob's bytes.
    pub fn blob_data_path(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs")
            .join(d.algorithm().as_str())
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client with no stored credentials and quick retries.
pub fn client() -> RegistryClient {
    client_with(|_| {})
}

pub fn client_with(f: impl FnOnce(&mut ClientConfig)) -> RegistryClient {
    let mut config = ClientConfig {
        credentials: None,
        ..ClientConfig::default()
    };
    config.retry.initial_backoff = Duration::from_millis(20);
    f(&mut config);
    RegistryClient::new(config).unwrap()
}

pub fn client_with_store(store: CredentialStore) -> RegistryClient {
    client_with(|c| c.credentials = Some(store))
}

pub fn no_progress() -> Arc<dyn Progress> {
    Arc::new(NoProgress)
}

/// Deterministic bytes that compress badly (xorshift).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Blobs as files named by digest: write to a temp file, rename only after
/// the reader ends cleanly (its last read verifies the digest).
pub struct DirStore {
    pub dir: PathBuf,
}

impl DirStore {
    pub fn new(dir: &Path) -> DirStore {
        std::fs::create_dir_all(dir).unwrap();
        DirStore {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(format!("{}-{}", d.algorithm(), d.hex()))
    }

    pub fn put(&self, bytes: &[u8]) -> Digest {
        let d = Digest::sha256_of(bytes);
        std::fs::write(self.path(&d), bytes).unwrap();
        d
    }

    pub fn get(&self, d: &Digest) -> Option<Vec<u8>> {
        std::fs::read(self.path(d)).ok()
    }

    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .map(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                    .unwrap_or(false)
            })
            .count()
    }
}

impl BlobSource for DirStore {
    async fn open(&self, d: &Digest) -> Result<(BoxReader, u64), BoxError> {
        let f = tokio::fs::File::open(self.path(d)).await?;
        let size = f.metadata().await?.len();
        Ok((Box::new(f), size))
    }
}

impl BlobSink for DirStore {
    async fn has(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    async fn write(&self, d: &Digest, _size: u64, mut reader: BoxReader) -> Result<(), BoxError> {
        let tmp = self.path(d).with_extension("tmp");
        let mut f = tokio::fs::File::create(&tmp).await?;
        match tokio::io::copy(&mut reader, &mut f).await {
            Ok(_) => {
                f.flush().await?;
                tokio::fs::rename(&tmp, self.path(d)).await?;
                Ok(())
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(Box::new(e))
            }
        }
    }
}
