//! `berthd` on a temporary root, a private socket and a free loopback port, and the `berth`
//! CLI pointed at it.
//!
//! Layout of the temp directory: `root/` (the daemon's `--root`), `berthd.sock`,
//! `config.toml`, `berthd.log` (appended across restarts) and `docker-config/` (the CLI's
//! `DOCKER_CONFIG`, so logins never touch the real home).

use crate::process::Supervised;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A running berthd, killed on drop; its log is shown if the test fails.
#[derive(Debug)]
pub struct Berthd {
    /// The registry's listen address (plain HTTP).
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub socket: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    docker_config: PathBuf,
    /// Extra environment for the daemon (and so its shims), kept across restarts.
    env: Vec<(String, String)>,
    process: Option<Supervised>,
    dir: tempfile::TempDir,
}

impl Berthd {
    /// No auth: anyone may push and pull.
    pub const CONFIG_AUTH_NONE: &'static str = "[registry]\nauth = \"none\"\nanonymous_pull = true\ntoken_ttl_secs = 300\ngc_grace_secs = 600\n";

    /// A config with the given auth mode (`none`, `basic`, `token`) and anonymous pull.
    pub fn config(auth: &str, anonymous_pull: bool) -> String {
        format!(
            "[registry]\nauth = \"{auth}\"\nanonymous_pull = {anonymous_pull}\ntoken_ttl_secs = 300\ngc_grace_secs = 600\n"
        )
    }

    /// Starts berthd with this config TOML and waits until it is ready: the control socket
    /// exists and `GET /v2/` answers 200 or 401.
    pub fn start(config_toml: &str) -> anyhow::Result<Self> {
        Self::start_with_env(config_toml, &[])
    }

    /// [`Berthd::start`] with extra environment variables for the daemon, which the
    /// shims it starts inherit (e.g. `BERTH_CGROUP_LAYOUT=v2`).
    pub fn start_with_env(config_toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("e2e-berthd-").tempdir()?;
        let root = dir.path().join("root");
        let docker_config = dir.path().join("docker-config");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&docker_config)?;
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config_toml)?;
        let mut daemon = Berthd {
            addr: crate::net::free_addr()?,
            root,
            socket: dir.path().join("berthd.sock"),
            config_path,
            log_path: dir.path().join("berthd.log"),
            docker_config,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            process: None,
            dir,
        };
        daemon.spawn()?;
        Ok(daemon)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(crate::bins::berthd()?);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--registry-listen")
            .arg(self.addr.to_string())
            .arg("--config")
            .arg(&self.config_path)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let mut process = Supervised::spawn("berthd", cmd, &self.log_path)?;
        let (addr, socket) = (self.addr, self.socket.clone());
        let ready = crate::net::wait_until("berthd to be ready", Duration::from_secs(60), || {
            process.check_alive()?;
            Ok(socket.exists() && crate::net::registry_ready(addr))
        });
        if let Err(e) = ready {
            anyhow::bail!(
                "{e} (socket {}, registry {addr}); log:\n{}",
                socket.display(),
                crate::process::tail(&process.log(), 80)
            );
        }
        self.process = Some(process);
        Ok(())
    }

    /// SIGKILL, no chance to clean up: what a crash or power cut leaves.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
            // Dropping while not panicking prints nothing: the log stays in the file.
        }
    }

    /// Graceful stop (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// Starts the daemon again on the same root, socket, port and config.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        // The socket file of a killed daemon stays behind; readiness must see a new one.
        let _ = std::fs::remove_file(&self.socket);
        self.spawn()
    }

    /// `127.0.0.1:PORT`, the registry host part of references.
    pub fn registry(&self) -> String {
        self.addr.to_string()
    }

    /// `unix:///…/berthd.sock`, for `--host` or `BERTH_HOST`.
    pub fn host_url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The temp directory holding root, socket, config and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Supervised::pid)
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.process.as_ref().and_then(Supervised::peak_rss_kib)
    }

    /// An error if the daemon has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.process.as_mut() {
            Some(p) => p.check_alive(),
            None => anyhow::bail!("berthd is not running"),
        }
    }

    /// The `berth` CLI against this daemon, with a private `DOCKER_CONFIG` and `HOME`.
    pub fn berth_command(&self, args: &[&str]) -> anyhow::Result<Command> {
        let mut cmd = Command::new(crate::bins::berth()?);
        cmd.env("BERTH_HOST", self.host_url())
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("HOME", self.dir.path())
            .args(args);
        Ok(cmd)
    }

    /// Runs `berth ARGS…` and returns its output whatever the status.
    pub fn berth(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.berth_command(args)?.stdin(Stdio::null()).output()?)
    }

    /// Runs `berth ARGS…`, returning stdout or an error with stderr and the daemon log tail.
    pub fn berth_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        self.berth_stdin_ok(args, "")
    }

    /// Runs `berth ARGS…` with `stdin` as its standard input (for `--password-stdin`).
    pub fn berth_stdin_ok(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = self
            .berth_command(args)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            anyhow::bail!(
                "berth {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}\nberthd log tail:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                crate::process::tail(&self.log(), 30)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `berth registry user add NAME --password-stdin --allow A …`.
    pub fn add_user(&self, name: &str, password: &str, allow: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["registry", "user", "add", name, "--password-stdin"];
        for a in allow {
            args.push("--allow");
            args.push(a);
        }
        self.berth_stdin_ok(&args, &format!("{password}\n"))
            .map(|_| ())
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        // Containers outlive the daemon by design: remove any a test left,
        // so a failed test leaks no processes, mounts or cgroups.
        if self.process.is_some()
            && let Ok(out) = self.berth(&["ps", "-a", "-q"])
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.berth(&["rm", "-f", id]);
            }
        }
        // Shown only if the test fails (libtest captures output); the Supervised guard
        // prints the log tail when it drops below.
        eprintln!("berthd temp dir: {}", self.dir.path().display());
        if self.process.is_none() {
            eprintln!(
                "----- berthd log (stopped) -----\n{}",
                crate::process::tail(&self.log(), 200)
            );
        }
    }
}
