//! `berth`: Docker-style verbs that talk to berthd over its unix socket.
//! Credentials live client-side in Docker's `config.json` (so docker and
//! skopeo share them) and travel with each pull or push, as Docker's
//! `X-Registry-Auth` does.

mod attach;
mod containers;
mod cp;
mod exec;
mod http;
mod images;
mod plugins;
mod progress;
mod terminal;

use std::io::Read;

use anyhow::{Context, bail};
use berth_api_types as api;
use berth_client::{ClientConfig, CredentialStore, Credentials, RegistryClient};
use berth_oci::Reference;
use clap::{Parser, Subcommand};
use http::Daemon;

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Command line client of berthd")]
pub struct Cli {
    /// The daemon to talk to.
    #[arg(
        long,
        env = "BERTH_HOST",
        default_value = "unix:///run/berth/berth.sock",
        global = true
    )]
    pub host: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a registry (credentials go to ~/.docker/config.json or its helper).
    Login {
        registry: String,
        #[arg(short, long)]
        username: Option<String>,
        #[arg(short, long)]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget a registry's credentials.
    Logout { registry: String },
    /// Pull an image into the local store.
    Pull {
        reference: String,
        /// os/arch[/variant]; the host's by default.
        #[arg(long)]
        platform: Option<String>,
    },
    /// Push a local image to its registry.
    Push { reference: String },
    /// Give a local image another name.
    Tag { source: String, target: String },
    /// List local images.
    Images {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove local images.
    Rmi {
        /// Accepted for Docker compatibility (no container can hold an image yet).
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Inspect, mount and prune local images.
    Image {
        #[command(subcommand)]
        command: images::ImageCommand,
    },
    /// Write images to an archive (OCI image layout, or `docker save` format).
    Save {
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        /// `oci` or `docker`.
        #[arg(long, default_value = "oci")]
        format: String,
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Load images from an archive (OCI layout or `docker save`, plain or gzip'd).
    Load {
        /// The archive; standard input if absent.
        #[arg(short, long)]
        input: Option<std::path::PathBuf>,
        /// Name for an image the archive does not name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Make a single-layer image from a root file system tarball (Docker's `import`).
    Import {
        /// ROOTFS.tar or .tar.gz; `-` for standard input.
        file: std::path::PathBuf,
        reference: String,
        /// Dockerfile-style config changes, e.g. `CMD ["sh"]`; repeatable.
        #[arg(short, long = "change")]
        changes: Vec<String>,
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Manage berthd's own registry.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Show what the daemon is.
    Info,
    /// Run a command in a new container.
    Run(Box<containers::RunArgs>),
    /// Create a container without starting it (`start` starts it).
    Create(Box<containers::RunArgs>),
    /// Start created or stopped containers.
    Start {
        /// Attach to its output (and with -i its stdin) and exit with its code.
        #[arg(short, long)]
        attach: bool,
        /// Attach our standard input (implies -a).
        #[arg(short, long)]
        interactive: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Attach to a running container's terminal or stdin and its output
    /// (ctrl-p ctrl-q detaches from a terminal).
    Attach(attach::AttachArgs),
    /// Stop containers (their restart policy does not fire) and start them again.
    Restart {
        /// Seconds to wait for the stop before SIGKILL.
        #[arg(short, long)]
        time: Option<u64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(Box<exec::ExecArgs>),
    /// Copy files between a container and the local file system.
    Cp {
        /// `CONTAINER:PATH`, a local path, or `-` (a tar on stdin).
        src: String,
        /// `CONTAINER:PATH`, a local path, or `-` (a tar on stdout).
        dest: String,
    },
    /// Show a container's processes.
    Top { container: String },
    /// Change a container's resource limits, live.
    Update(Box<containers::UpdateArgs>),
    /// List containers.
    Ps {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a container's output.
    Logs(containers::LogsArgs),
    /// Wait for a container to end and print its exit code.
    Wait { container: String },
    /// Stop a container: its stop signal, then SIGKILL after -t seconds.
    Stop {
        #[arg(short, long)]
        time: Option<u64>,
        container: String,
    },
    /// Send a signal to a container (SIGKILL by default).
    Kill {
        #[arg(short, long)]
        signal: Option<String>,
        container: String,
    },
    /// Remove containers.
    Rm {
        #[arg(short, long)]
        force: bool,
        /// Also remove the containers' anonymous volumes.
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show a container's record, spec and resources as JSON.
    Inspect { container: String },
    /// Freeze every process of a container.
    Pause { container: String },
    /// Thaw a paused container.
    Unpause { container: String },
    /// A container's resource use (one sample, as `--no-stream`).
    Stats {
        #[arg(long = "no-stream")]
        no_stream: bool,
        container: String,
    },
    /// Manage named volumes.
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Manage container networks.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Manage Wasm plugins.
    Plugin {
        #[command(subcommand)]
        command: plugins::PluginCommand,
    },
    /// Scan an image with the scanner plugins (or show the scan-on-push
    /// report of a pushed manifest digest).
    Scan {
        image: String,
        /// Print the whole answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name if none is given).
    Create { name: Option<String> },
    /// List volumes.
    Ls,
    /// Show a volume and the containers using it.
    Inspect { name: String },
    /// Remove volumes no container uses.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses.
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a user-defined bridge network (its containers find each other by name).
    Create {
        name: String,
        #[arg(long)]
        subnet: Option<String>,
    },
    /// List networks.
    Ls,
    /// Show a network and its endpoints as JSON.
    Inspect { name: String },
    /// Remove a network no container uses.
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Registry users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Collect blobs no manifest, tag, image or upload holds.
    Gc,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or replace its password and grants).
    Add {
        name: String,
        #[arg(short, long)]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        /// `ACTIONS:GLOB` on repositories, e.g. `pull,push:team/*` or `*:*`;
        /// `control:read` or `control:write` for the control API on TCP
        /// (reads; changes without root); `admin` for everything. Repeatable.
        #[arg(long = "allow")]
        grants: Vec<String>,
    },
    /// List users.
    Ls,
    /// Remove a user.
    Rm { name: String },
}

fn read_password(flag: Option<String>, stdin: bool) -> anyhow::Result<String> {
    if stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        return Ok(s.trim_end_matches(['\n', '\r']).to_string());
    }
    flag.context("give a password with --password-stdin (or -p)")
}

fn parse_ref(s: &str) -> anyhow::Result<Reference> {
    Ok(s.parse::<Reference>()?)
}

/// The stored credentials for `registry`, as the daemon wants them.
fn auth_for(registry: &str) -> anyhow::Result<Option<api::Auth>> {
    let store = CredentialStore::from_env()?;
    Ok(store.get(registry)?.map(|c| api::Auth {
        username: c.username,
        password: c.password,
    }))
}

fn local_client() -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::new(ClientConfig {
        credentials: Some(CredentialStore::from_env()?),
        ..ClientConfig::default()
    })?)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let daemon = Daemon::from_host(&cli.host)?;
    use ::http::Method;
    match cli.command {
        Command::Login {
            registry,
            username,
            password,
            password_stdin,
        } => {
            let user = username.context("give a user name with -u")?;
            let pass = read_password(password, password_stdin)?;
            local_client()?
                .login(&registry, &Credentials::new(user, pass))
                .await?;
            println!("Login Succeeded");
        }
        Command::Logout { registry } => {
            if local_client()?.logout(&registry).await? {
                println!("Removing login credentials for {registry}");
            } else {
                println!("Not logged in to {registry}");
            }
        }
        Command::Pull {
            reference,
            platform,
        } => {
            let r = parse_ref(&reference)?;
            let body = http::body(&api::PullRequest {
                reference: r.to_string(),
                platform,
                auth: auth_for(&r.registry)?,
            })?;
            let (status, stream) = daemon.send(Method::POST, "/v1/images/pull", body).await?;
            let result: api::Image = http::decode(finish(status, stream).await?, "pull")?;
            println!("{}: pulled {}", r, result.manifest);
        }
        Command::Push { reference } => {
            let r = parse_ref(&reference)?;
            let body = http::body(&api::PushRequest {
                reference: r.to_string(),
                auth: auth_for(&r.registry)?,
            })?;
            let (status, stream) = daemon.send(Method::POST, "/v1/images/push", body).await?;
            let result: api::PushResponse = http::decode(finish(status, stream).await?, "push")?;
            println!("{}: digest: {} size: {}", r, result.digest, result.size);
        }
        Command::Tag { source, target } => {
            let body = http::body(&api::TagRequest {
                source: parse_ref(&source)?.to_string(),
                target: parse_ref(&target)?.to_string(),
            })?;
            daemon.json(Method::POST, "/v1/images/tag", body).await?;
        }
        Command::Images { quiet } => {
            let images: Vec<api::Image> = daemon.call(Method::GET, "/v1/images", None).await?;
            print_images(&images, quiet);
        }
        Command::Image { command } => images::image(&daemon, command).await?,
        Command::Run(args) => containers::run(&daemon, *args, false).await?,
        Command::Create(args) => containers::run(&daemon, *args, true).await?,
        Command::Start {
            attach,
            interactive,
            containers: list,
        } => {
            if attach || interactive {
                containers::start_attached(&daemon, &list, interactive).await?
            } else {
                containers::start(&daemon, &list).await?
            }
        }
        Command::Attach(args) => attach::attach(&daemon, args).await?,
        Command::Restart {
            time,
            containers: list,
        } => containers::restart(&daemon, &list, time).await?,
        Command::Exec(args) => exec::exec(&daemon, *args).await?,
        Command::Update(args) => containers::update(&daemon, *args).await?,
        Command::Top { container } => containers::top(&daemon, &container).await?,
        Command::Cp { src, dest } => cp::cp(&daemon, &src, &dest).await?,
        Command::Ps { all, quiet } => containers::ps(&daemon, all, quiet).await?,
        Command::Logs(args) => containers::logs(&daemon, args).await?,
        Command::Wait { container } => containers::wait(&daemon, &container).await?,
        Command::Stop { time, container } => containers::stop(&daemon, &container, time).await?,
        Command::Kill { signal, container } => {
            containers::kill(&daemon, &container, signal).await?
        }
        Command::Rm {
            force,
            volumes,
            containers: list,
        } => containers::rm(&daemon, &list, force, volumes).await?,
        Command::Inspect { container } => containers::inspect(&daemon, &container).await?,
        Command::Network { command } => network(&daemon, command).await?,
        Command::Volume { command } => volume(&daemon, command).await?,
        Command::Pause { container } => {
            daemon
                .json(
                    Method::POST,
                    &format!("/v1/containers/{}/pause", encode(&container)),
                    None,
                )
                .await?;
            println!("{container}");
        }
        Command::Unpause { container } => {
            daemon
                .json(
                    Method::POST,
                    &format!("/v1/containers/{}/unpause", encode(&container)),
                    None,
                )
                .await?;
            println!("{container}");
        }
        Command::Stats { container, .. } => {
            let v = daemon
                .json(
                    Method::GET,
                    &format!("/v1/containers/{}/stats", encode(&container)),
                    None,
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Save {
            output,
            format,
            references,
        } => images::save(&daemon, &references, output, &format).await?,
        Command::Load { input, name } => images::load(&daemon, input, name).await?,
        Command::Import {
            file,
            reference,
            changes,
            message,
        } => images::import(&daemon, file, reference, &changes, message).await?,
        Command::Rmi { references, .. } => {
            // Like docker: remove what can be removed, then report the rest.
            let mut failed = 0;
            for r in references {
                let result = async {
                    let r = parse_ref(&r)?;
                    let q: String = form_query(&[("reference", &r.to_string())]);
                    daemon
                        .json(Method::DELETE, &format!("/v1/images?{q}"), None)
                        .await?;
                    anyhow::Ok(r)
                }
                .await;
                match result {
                    Ok(r) => println!("Untagged: {r}"),
                    Err(e) => {
                        eprintln!("berth: {e:#}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} image(s) could not be removed");
            }
        }
        Command::Registry { command } => registry(&daemon, command).await?,
        Command::Plugin { command } => plugins::plugin(&daemon, command).await?,
        Command::Scan { image, json } => plugins::scan(&daemon, &image, json).await?,
        Command::Info => {
            let info = daemon.json(Method::GET, "/v1/info", None).await?;
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
    }
    Ok(())
}

async fn finish(
    status: ::http::StatusCode,
    stream: hyper::body::Incoming,
) -> anyhow::Result<serde_json::Value> {
    if !status.is_success() {
        return http::json_of(status, stream).await;
    }
    progress::follow(stream).await
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn print_images(list: &[api::Image], quiet: bool) {
    if !quiet {
        println!("{:<50} {:<20} {:>12}", "REFERENCE", "IMAGE ID", "SIZE");
    }
    for img in list {
        let id = img
            .config
            .split(':')
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(12)
            .collect::<String>();
        if quiet {
            println!("{id}");
        } else {
            println!(
                "{:<50} {:<20} {:>9.1} MB",
                img.reference,
                id,
                img.size as f64 / 1e6
            );
        }
    }
}

async fn registry(daemon: &Daemon, command: RegistryCommand) -> anyhow::Result<()> {
    use ::http::Method;
    match command {
        RegistryCommand::User {
            command:
                UserCommand::Add {
                    name,
                    password,
                    password_stdin,
                    grants,
                },
        } => {
            let pass = read_password(password, password_stdin)?;
            let body = http::body(&api::AddUser {
                name: name.clone(),
                password: pass,
                grants,
            })?;
            daemon
                .json(Method::POST, "/v1/registry/users", body)
                .await?;
            println!("user {name} added");
        }
        RegistryCommand::User {
            command: UserCommand::Ls,
        } => {
            let users = daemon.json(Method::GET, "/v1/registry/users", None).await?;
            println!("{}", serde_json::to_string_pretty(&users)?);
        }
        RegistryCommand::User {
            command: UserCommand::Rm { name },
        } => {
            daemon
                .json(Method::DELETE, &format!("/v1/registry/users/{name}"), None)
                .await?;
            println!("user {name} removed");
        }
        RegistryCommand::Gc => {
            let report = daemon.json(Method::POST, "/v1/registry/gc", None).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}

/// Percent-encode a query value.
pub(crate) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn network(daemon: &Daemon, command: NetworkCommand) -> anyhow::Result<()> {
    use ::http::Method;
    match command {
        NetworkCommand::Create { name, subnet } => {
            let body = http::body(&api::CreateNetwork { name, subnet })?;
            let net: api::Network = daemon.call(Method::POST, "/v1/networks", body).await?;
            println!("{}", net.id);
        }
        NetworkCommand::Ls => {
            let list: Vec<api::Network> = daemon.call(Method::GET, "/v1/networks", None).await?;
            println!("{:<20} {:<20} {:<18} BRIDGE", "NAME", "SUBNET", "GATEWAY");
            for n in list {
                println!(
                    "{:<20} {:<20} {:<18} {}",
                    n.name,
                    n.subnet,
                    n.gateway.to_string(),
                    n.bridge_name
                );
            }
        }
        NetworkCommand::Inspect { name } => {
            let v = daemon
                .json(
                    Method::GET,
                    &format!("/v1/networks/{}", encode(&name)),
                    None,
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        NetworkCommand::Rm { name } => {
            daemon
                .json(
                    Method::DELETE,
                    &format!("/v1/networks/{}", encode(&name)),
                    None,
                )
                .await?;
            println!("{name}");
        }
    }
    Ok(())
}

async fn volume(daemon: &Daemon, command: VolumeCommand) -> anyhow::Result<()> {
    use ::http::Method;
    match command {
        VolumeCommand::Create { name } => {
            let body = http::body(&api::CreateVolume { name })?;
            let vol: api::Volume = daemon.call(Method::POST, "/v1/volumes", body).await?;
            println!("{}", vol.name);
        }
        VolumeCommand::Ls => {
            let list: Vec<api::Volume> = daemon.call(Method::GET, "/v1/volumes", None).await?;
            println!("VOLUME NAME");
            for vol in list {
                println!("{}", vol.name);
            }
        }
        VolumeCommand::Inspect { name } => {
            let v = daemon
                .json(Method::GET, &format!("/v1/volumes/{}", encode(&name)), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        VolumeCommand::Rm { names } => {
            for n in names {
                daemon
                    .json(Method::DELETE, &format!("/v1/volumes/{}", encode(&n)), None)
                    .await?;
                println!("{n}");
            }
        }
        VolumeCommand::Prune => {
            let pruned: api::VolumePruneResponse =
                daemon.call(Method::POST, "/v1/volumes/prune", None).await?;
            for n in pruned.removed {
                println!("{n}");
            }
        }
    }
    Ok(())
}
