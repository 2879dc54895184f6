//! CNCF Distribution (`docker-registry` 2.8) as a real foreign registry on loopback, with its
//! own config file and storage root.

use crate::process::Supervised;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Options for [`DockerRegistry::start`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOpts {
    /// `(user, password)`: require HTTP basic auth with an htpasswd file holding this user.
    pub htpasswd: Option<(String, String)>,
    /// Storage root; a fresh temp directory when `None`.
    pub storage: Option<PathBuf>,
}

/// A running docker-registry, killed on drop.
#[derive(Debug)]
pub struct DockerRegistry {
    pub addr: SocketAddr,
    pub storage: PathBuf,
    process: Supervised,
    _dir: tempfile::TempDir,
}

impl DockerRegistry {
    pub fn start(opts: RegistryOpts) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("e2e-docker-registry-")
            .tempdir()?;
        let storage = opts
            .storage
            .clone()
            .unwrap_or_else(|| dir.path().join("storage"));
        std::fs::create_dir_all(&storage)?;
        let addr = crate::net::free_addr()?;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {addr}\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
            storage.display()
        );
        if let Some((user, password)) = &opts.htpasswd {
            let htpasswd = dir.path().join("htpasswd");
            let line = crate::run_ok(Command::new("htpasswd").args(["-Bbn", user, password]))?;
            std::fs::write(&htpasswd, line.trim_end().to_string() + "\n")?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-e2e\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&config_path);
        let process = Supervised::spawn("docker-registry", cmd, &dir.path().join("registry.log"))?;
        let mut reg = DockerRegistry {
            addr,
            storage,
            process,
            _dir: dir,
        };
        let ready = crate::net::wait_until(
            "docker-registry to answer /v2/",
            Duration::from_secs(30),
            || {
                reg.process.check_alive()?;
                Ok(crate::net::registry_ready(addr))
            },
        );
        if let Err(e) = ready {
            anyhow::bail!(
                "{e}; log:\n{}",
                crate::process::tail(&reg.process.log(), 50)
            );
        }
        Ok(reg)
    }

    /// `127.0.0.1:PORT`, the registry host part of references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.process.peak_rss_kib()
    }

    pub fn log(&self) -> String {
        self.process.log()
    }
}
