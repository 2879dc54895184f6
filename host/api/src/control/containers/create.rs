//! `POST /v1/containers`: `docker run` and `docker create`+`start` in one:
//! prepare the root file system on the image's top snapshot, build the
//! runtime spec, start a shim, wire the network, let the container go.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_runtime::{ExtraMount, ImageDefaults, RunOptions};
use berth_snapshot::Labels;
use serde::Deserialize;

use super::record::{ContainerRecord, Status, status_of, tree};
use crate::control::store::read_config;
use crate::control::{ControlApp, ControlError, Shared};

/// The `docker run` options the API takes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunRequest {
    pub image: String,
    pub name: Option<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub detach: bool,
    pub auto_remove: bool,
    pub network: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub no_new_privileges: bool,
    pub seccomp_unconfined: bool,
    /// `-v /host:/ctr[:ro]` or `-v NAME:/ctr[:ro]`.
    pub volumes: Vec<String>,
    /// `--mount type=…,source=…,target=…`.
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    /// `-p [ip:]host:container[/udp]`.
    pub publish: Vec<String>,
    /// The lines of `--env-file` files (read by the CLI).
    pub env_file_lines: Vec<String>,
    /// `--ulimit name=soft[:hard]`.
    pub ulimits: Vec<String>,
    /// `--add-host name:ip`.
    pub add_hosts: Vec<String>,
    /// `--dns IP`.
    pub dns: Vec<String>,
    /// `--label KEY=VALUE`.
    pub labels: std::collections::BTreeMap<String, String>,
}

fn parse_ulimit(u: &str) -> Result<berth_runtime::Ulimit, ControlError> {
    let bad = || {
        ControlError::bad_request(format!(
            "--ulimit {u:?}: use name=soft[:hard], e.g. nofile=1024:2048"
        ))
    };
    let (name, values) = u.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    Ok(berth_runtime::Ulimit {
        name: name.to_string(),
        soft: soft.parse().map_err(|_| bad())?,
        hard: hard.parse().map_err(|_| bad())?,
    })
}

fn runtime_err(e: berth_runtime::RuntimeError) -> ControlError {
    ControlError::bad_request(e.to_string())
}

fn wanted_mounts(req: &RunRequest) -> Result<Vec<super::mounts::Wanted>, ControlError> {
    let mut w = Vec::new();
    for v in &req.volumes {
        w.push(super::mounts::parse_v(v)?);
    }
    for m in &req.mounts {
        w.push(super::mounts::parse_mount(m)?);
    }
    for t in &req.tmpfs {
        w.push(super::mounts::Wanted::Tmpfs {
            destination: t.clone(),
        });
    }
    Ok(w)
}

fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Wait until the shim wrote the pid (created) or an exit record (failed).
async fn await_created(dir: &Path) -> Status {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status_of(dir);
        if s != Status::Created || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) async fn run(
    State(app): Shared,
    axum::Json(mut req): axum::Json<RunRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let image = crate::control::inspect::image(&app, &req.image)?;
    let chain = image.chain_id.clone().ok_or_else(|| {
        ControlError::bad_request(format!("image {} has no layers to run", image.reference))
    })?;
    let id = new_id();
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| format!("berth-{}", &id[..12]));
    let containers = tree(&app)?;
    if containers
        .list::<ContainerRecord>()?
        .iter()
        .any(|(_, r)| r.name == name)
    {
        return Err(ControlError::new(
            StatusCode::CONFLICT,
            "name_in_use",
            format!("the name {name:?} is in use by another container; remove it or pick another"),
        ));
    }
    // Everything that can fail without touching the host comes first.
    let wanted = wanted_mounts(&req)?;
    let config = read_config(&app, &image.config).await?;
    let image_volumes: Vec<String> = config
        .config
        .as_ref()
        .map(|c| c.volumes.keys().cloned().collect())
        .unwrap_or_default();
    let dir = app.root.join("containers").join(&id);
    let rootfs = dir.join("rootfs");
    let etc = dir.join("etc");
    for d in [&rootfs, &etc] {
        std::fs::create_dir_all(d)
            .map_err(|e| ControlError::internal(format!("creating {}: {e}", d.display())))?;
    }
    let snapshots = app.unpacker.snapshots().clone();
    let undo = |mounted: bool| {
        if mounted {
            let _ = berth_snapshot::unmount(&rootfs);
        }
        let _ = snapshots.remove(&id);
        let _ = std::fs::remove_dir_all(&dir);
    };
    let mounts = snapshots
        .prepare(&id, Some(&chain.to_string()), Labels::new())
        .map_err(ControlError::internal)?;
    if let Err(e) = berth_snapshot::mount_all(&mounts, &rootfs) {
        undo(false);
        return Err(ControlError::internal(format!(
            "mounting the root file system: {e}"
        )));
    }
    // Hooks judge the container once its user can be resolved from the
    // image's files, before anything else is set up.
    let wanted_spec = super::policy::spec_of(
        &req,
        &image.manifest.to_string(),
        &config.config.clone().unwrap_or_default(),
        &rootfs,
    )
    .inspect_err(|_| undo(true))?;
    let verdict = app
        .policy
        .check(berth_policy::Event::PreCreate(wanted_spec))
        .await
        .inspect_err(|_| undo(true))?;
    super::policy::apply(&mut req, &verdict.patch);
    let super::mounts::Resolved {
        mounts: extra,
        named,
        anonymous,
    } = super::mounts::resolve(&app, &rootfs, &wanted, &image_volumes)
        .inspect_err(|_| undo(true))?;
    let record = ContainerRecord {
        id: id.clone(),
        name: name.clone(),
        image: image.reference.clone(),
        command: req.cmd.clone().unwrap_or_default(),
        created: berth_state::now(),
        dir: dir.clone(),
        network: req.network.clone().unwrap_or_else(|| "bridge".into()),
        auto_remove: req.auto_remove,
        stop_signal: "SIGTERM".into(),
        publish: req.publish.clone(),
        volumes: named.iter().chain(&anonymous).cloned().collect(),
        anonymous_volumes: anonymous,
        labels: req.labels.clone(),
    };
    super::ports::parse(&req.publish)?;
    containers.put(&id, &record)?;
    match launch(&app, &record, &req, &config, extra).await {
        Ok(()) => {}
        Err(e) => {
            super::lifecycle::cleanup(&app, &record, true).await;
            return Err(e);
        }
    }
    notify_started(&app, &record);
    if req.detach {
        return Ok(axum::Json(serde_json::json!({ "id": id, "name": name })));
    }
    let status = super::lifecycle::wait_exit(&record.dir, None).await;
    // The output goes with the answer: with --rm it is gone right after.
    let (stdout, stderr) = super::record::read_logs(&record.dir);
    let body = serde_json::json!({
        "id": id,
        "name": name,
        "status": status,
        "stdout": stdout,
        "stderr": stderr,
    });
    if record.auto_remove {
        super::lifecycle::cleanup(&app, &record, true).await;
    }
    Ok(axum::Json(body))
}

/// Fires `post-start`, and `post-stop` once the container exits.
fn notify_started(app: &std::sync::Arc<ControlApp>, record: &ContainerRecord) {
    if app.policy.current().is_empty() {
        return;
    }
    app.policy
        .notify(berth_policy::Event::PostStart(super::policy::event_of(
            record, None,
        )));
    let (app, record) = (app.clone(), record.clone());
    tokio::spawn(async move {
        if let Status::Exited { code, .. } = super::lifecycle::wait_exit(&record.dir, None).await {
            app.policy
                .notify(berth_policy::Event::PostStop(super::policy::event_of(
                    &record,
                    Some(code),
                )));
        }
    });
}

/// Everything from the spec to the running process.
async fn launch(
    app: &ControlApp,
    record: &ContainerRecord,
    req: &RunRequest,
    config: &berth_image::ImageConfig,
    mounts: Vec<ExtraMount>,
) -> Result<(), ControlError> {
    let cc = config.config.clone().unwrap_or_default();
    let extra_hosts = berth_network::parse_extra_hosts(&req.add_hosts)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    let defaults = ImageDefaults {
        env: cc.env.clone(),
        entrypoint: cc.entrypoint.clone(),
        cmd: cc.cmd.clone(),
        working_dir: cc.working_dir.clone(),
        user: cc.user.clone(),
    };
    let opts = RunOptions {
        entrypoint: req.entrypoint.clone(),
        cmd: req.cmd.clone(),
        env: req.env.clone(),
        workdir: req.workdir.clone(),
        user: req.user.clone(),
        hostname: req.hostname.clone(),
        cap_add: req.cap_add.clone(),
        cap_drop: req.cap_drop.clone(),
        privileged: req.privileged,
        no_new_privileges: req.no_new_privileges,
        seccomp_unconfined: req.seccomp_unconfined,
        read_only: req.read_only,
        mounts,
        etc_dir: Some(record.dir.join("etc")),
        env_file_lines: req.env_file_lines.clone(),
        ulimits: req
            .ulimits
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_, _>>()?,
        extra_hosts: extra_hosts
            .iter()
            .map(|h| (h.name.clone(), h.ip.to_string()))
            .collect(),
    };
    let mode: berth_network::NetworkMode = match record.network.parse() {
        Ok(m) => m,
        Err(never) => match never {},
    };
    let mut spec =
        berth_runtime::build_spec(&record.id, &record.dir.join("rootfs"), &defaults, &opts)
            .map_err(runtime_err)?;
    if mode == berth_network::NetworkMode::Host {
        share_host_network(&mut spec);
    }
    if !req.dns.is_empty() {
        let servers = req
            .dns
            .iter()
            .map(|d| {
                d.parse().map_err(|_| {
                    ControlError::bad_request(format!("--dns {d:?} is not an IP address"))
                })
            })
            .collect::<Result<Vec<std::net::IpAddr>, _>>()?;
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        std::fs::write(
            record.dir.join("etc").join("resolv.conf"),
            berth_network::resolv_conf(&servers, &host),
        )
        .map_err(ControlError::internal)?;
    }
    spec.save(record.dir.join("config.json"))
        .map_err(ControlError::internal)?;
    let shim = crate::control::containers::lifecycle::shim_config(record, req);
    std::fs::write(
        record.dir.join("shim.json"),
        serde_json::to_vec(&shim).map_err(ControlError::internal)?,
    )
    .map_err(ControlError::internal)?;
    nix::unistd::mkfifo(
        &record.dir.join("start"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| ControlError::internal(format!("creating the start fifo: {e}")))?;
    spawn_shim(app, &record.dir)?;
    let pid = match await_created(&record.dir).await {
        Status::Running { pid } => pid,
        Status::Exited { code, error, .. } => {
            return Err(ControlError::new(
                StatusCode::BAD_REQUEST,
                exit_code_name(code),
                error
                    .unwrap_or_else(|| format!("the container could not be created (exit {code})")),
            ));
        }
        Status::Created => {
            return Err(ControlError::internal(
                "the container monitor did not report within 30 s; see shim.log",
            ));
        }
    };
    let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
    let endpoint = berth_network::EndpointSpec {
        aliases: vec![record.name.clone()],
        hostname: req.hostname.clone(),
        extra_hosts,
        hosts_path: Some(record.dir.join("etc").join("hosts")),
    };
    app.networks
        .connect(&mode, &netns, &record.id, endpoint)
        .await
        .map_err(|e| {
            ControlError::internal(format!(
                "connecting the container to {}: {e}",
                record.network
            ))
        })?;
    super::ports::open(app, record).await?;
    let fifo = record.dir.join("start");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .and_then(|mut f| f.write_all(b"1"))
    })
    .await
    .map_err(ControlError::internal)?
    .map_err(|e| ControlError::internal(format!("starting the container: {e}")))?;
    Ok(())
}

/// Docker's names for the exit codes of failed runs, as error codes.
fn exit_code_name(code: i32) -> &'static str {
    match code {
        126 => "command_not_executable",
        127 => "command_not_found",
        _ => "create_failed",
    }
}

/// `--network host`: no network namespace of its own.
fn share_host_network(spec: &mut oci_spec::runtime::Spec) {
    if let Some(linux) = spec.linux().clone() {
        let namespaces = linux.namespaces().clone().map(|ns| {
            ns.into_iter()
                .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network)
                .collect::<Vec<_>>()
        });
        let mut linux = linux;
        linux.set_namespaces(namespaces);
        spec.set_linux(Some(linux));
    }
}

/// Start the shim in its own session, so it outlives the daemon; a task
/// reaps it if the daemon is still there when it ends.
fn spawn_shim(app: &ControlApp, dir: &Path) -> Result<(), ControlError> {
    let log = std::fs::File::create(dir.join("shim.log")).map_err(ControlError::internal)?;
    let mut cmd = tokio::process::Command::new(&app.shim);
    cmd.arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ControlError::internal(format!("starting {}: {e}", app.shim.display())))?;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}
