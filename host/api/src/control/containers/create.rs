//! `POST /v1/containers`: `docker run` and `docker create`+`start` in one:
//! prepare the root file system on the image's top snapshot, build the
//! runtime spec, start a shim, wire the network, let the container go.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_runtime::{ExtraMount, ImageDefaults, RunOptions};
use berth_snapshot::Labels;

use berth_runtime::shim_files::{LogOptions, RestartPolicy, write_atomic, write_atomic_unsynced};

use super::record::{ContainerRecord, Status, tree};
use crate::control::{ControlApp, ControlError, Shared};

pub use berth_api_types::RunRequest;
use berth_api_types::RunResponse;

/// Docker's json-file options over the daemon's defaults.
pub fn parse_log_opts(opts: &[String], defaults: LogOptions) -> Result<LogOptions, ControlError> {
    let mut out = defaults;
    for o in opts {
        let bad = |why: &str| ControlError::bad_request(format!("--log-opt {o:?}: {why}"));
        let (key, value) = o
            .split_once('=')
            .ok_or_else(|| bad("use key=value, e.g. max-size=10m or max-file=3"))?;
        match key {
            "max-size" => {
                let size = parse_size(value)
                    .ok_or_else(|| bad("max-size is a size such as 10m, 512k or 1g"))?;
                out.max_size = (size > 0).then_some(size);
            }
            "max-file" => {
                out.max_file = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("max-file is a count of at least 1"))?;
            }
            _ => return Err(bad("berth knows max-size and max-file")),
        }
    }
    if out.max_file > 1 && out.max_size.is_none() {
        return Err(ControlError::bad_request(
            "--log-opt max-file needs max-size: without it the log never rotates",
        ));
    }
    Ok(out)
}

/// `10m`, `512k`, `1g`, `4096` (bytes); `-1` is no limit (0).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Some(0);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some((n * mult as f64) as u64)
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

pub(crate) async fn run(
    State(app): Shared,
    axum::Json(req): axum::Json<RunRequest>,
) -> Result<impl IntoResponse, ControlError> {
    // Creation runs to its end, or undoes what it did, even when the client
    // goes away: dropped halfway (during a slow hook, say) it would leave a
    // mounted root file system and no record to remove it by.
    tokio::spawn(create(app, req))
        .await
        .map_err(ControlError::internal)?
}

async fn create(
    app: std::sync::Arc<ControlApp>,
    mut req: RunRequest,
) -> Result<axum::Json<RunResponse>, ControlError> {
    let image = app.engine.images().get(&req.image)?;
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
    let restart: RestartPolicy = match &req.restart {
        Some(r) => r
            .parse()
            .map_err(|e: berth_runtime::shim_files::BadRestartPolicy| {
                ControlError::bad_request(e.to_string())
            })?,
        None => RestartPolicy::No,
    };
    if req.auto_remove && restart != RestartPolicy::No {
        return Err(ControlError::bad_request(
            "conflicting options: --restart and --rm (a container removed when it exits cannot be restarted); drop one",
        ));
    }
    let log = parse_log_opts(&req.log_opts, app.container_logs)?;
    super::ports::parse(&req.publish)?;
    let config = app.engine.images().config(&image.config).await?;
    let healthcheck = super::health::resolve(
        config.config.as_ref().and_then(|c| c.healthcheck.as_ref()),
        &req.health,
    )
    .map_err(ControlError::bad_request)?;
    let image_volumes: Vec<String> = config
        .config
        .as_ref()
        .map(|c| c.volumes.keys().cloned().collect())
        .unwrap_or_default();
    let dir = app.root.join("containers").join(&id);
    let rootfs = dir.join("rootfs");
    let etc = dir.join("etc");
    for d in [&rootfs, &etc] {
        berth_runtime::shim_files::create_private_dir(d)
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
    // A `--rm` container's writes are thrown away when it ends, or at the
    // start after a crash: its overlay need not sync the host's disk.
    let mut labels = Labels::new();
    if req.auto_remove {
        labels.insert(berth_snapshot::DISPOSABLE.into(), String::new());
    }
    let mounts = snapshots
        .prepare(&id, Some(&chain.to_string()), labels)
        .map_err(ControlError::internal)?;
    if let Err(e) = berth_snapshot::mount_all(&mounts, &rootfs) {
        undo(false);
        return Err(ControlError::internal(format!(
            "mounting the root file system: {e}"
        )));
    }
    // Hooks judge the container once its user can be resolved from the
    // image's files, before anything else is set up. Without hooks nothing
    // is read for them.
    if app.policy.wants(berth_policy::EventKind::PreCreate) {
        let spec_started = std::time::Instant::now();
        let mut wanted_spec = super::policy::spec_of(
            &req,
            &wanted,
            &image.manifest.to_string(),
            &config.config.clone().unwrap_or_default(),
            &rootfs,
        )
        .inspect_err(|_| undo(true))?;
        wanted_spec.name.clone_from(&name);
        tracing::debug!(elapsed = ?spec_started.elapsed(), "pre-create event built");
        let verdict = app
            .policy
            .check(berth_policy::Event::PreCreate(wanted_spec))
            .await
            .inspect_err(|_| undo(true))?;
        super::policy::apply(&mut req, &verdict.patch);
    }
    // Seeding new volumes copies files: off the async workers.
    let resolving = {
        let (app, id, rootfs) = (app.clone(), id.clone(), rootfs.clone());
        tokio::task::spawn_blocking(move || {
            super::mounts::resolve(&app, &id, &rootfs, &wanted, &image_volumes)
        })
    };
    let super::mounts::Resolved {
        mounts: extra,
        named,
        anonymous,
        made,
    } = resolving
        .await
        .map_err(|e| ControlError::internal(format!("resolving the container's mounts: {e}")))
        .and_then(|r| r)
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
        restart,
        hostname: req.hostname.clone(),
        add_hosts: req.add_hosts.clone(),
        healthcheck,
        tty: req.tty,
        open_stdin: req.open_stdin,
        stdin_once: req.stdin_once && req.open_stdin,
    };
    if let Err(e) = containers.put(&id, &record) {
        // Nothing names the container yet: undo all the create made.
        undo(true);
        let app = app.clone();
        let unmade = tokio::task::spawn_blocking(move || super::mounts::unmake(&app, &made));
        if let Err(join) = unmade.await {
            tracing::warn!(error = %join, "removing the volumes of a container that failed");
        }
        return Err(e.into());
    }
    let launched = match prepare(&record, &req, &config, extra, log) {
        Ok(()) if req.no_start => Ok(()),
        Ok(()) => super::start::start_shim(&app, &record).await,
        Err(e) => Err(e),
    };
    if let Err(e) = launched {
        super::lifecycle::cleanup(&app, &record, true).await;
        return Err(e);
    }
    if !req.no_start {
        notify_started(&app, &record);
        super::health::start(&app, &record);
    }
    if req.detach && record.auto_remove {
        super::lifecycle::remove_when_done(&app, &record);
    }
    if req.detach || req.no_start {
        return Ok(axum::Json(RunResponse {
            id,
            name,
            ..Default::default()
        }));
    }
    let status = super::lifecycle::wait_exit(&record.dir, None).await;
    // The output goes with the answer: with --rm it is gone right after.
    let (stdout, stderr) = super::record::read_logs(&record.dir);
    let body = RunResponse {
        id,
        name,
        status: Some(status),
        stdout: Some(stdout),
        stderr: Some(stderr),
    };
    if record.auto_remove {
        super::lifecycle::cleanup(&app, &record, true).await;
    }
    Ok(axum::Json(body))
}

/// Fires `post-start`, and `post-stop` once the container exits.
pub(crate) fn notify_started(app: &std::sync::Arc<ControlApp>, record: &ContainerRecord) {
    app.policy
        .notify(berth_policy::Event::PostStart(super::policy::event_of(
            record, None,
        )));
    // A watcher only when some hook wants post-stop: it polls the exit.
    if !app.policy.wants(berth_policy::EventKind::PostStop) {
        return;
    }
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

/// The files a shim needs: the runtime spec and `shim.json`.
fn prepare(
    record: &ContainerRecord,
    req: &RunRequest,
    config: &berth_image::ImageConfig,
    mounts: Vec<ExtraMount>,
    log: LogOptions,
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
        tty: req.tty,
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
        berth_runtime::shim_files::write_shared(
            &record.dir.join("etc").join("resolv.conf"),
            berth_network::resolv_conf(&servers, &host).as_bytes(),
        )
        .map_err(ControlError::internal)?;
    }
    // Private files: the spec carries the environment, secrets included.
    // A `--rm` container's are not fsynced: after a power cut the start-up
    // removes such a container whatever its files hold (`clean_abandoned`).
    let write = match record.auto_remove {
        true => write_atomic_unsynced,
        false => write_atomic,
    };
    write(
        &record.dir.join("config.json"),
        &serde_json::to_vec(&spec).map_err(ControlError::internal)?,
    )
    .map_err(ControlError::internal)?;
    let shim = crate::control::containers::lifecycle::shim_config(record, req, log);
    write(
        &record.dir.join("shim.json"),
        &serde_json::to_vec(&shim).map_err(ControlError::internal)?,
    )
    .map_err(ControlError::internal)?;
    Ok(())
}

/// Docker's names for the exit codes of failed runs, as error codes.
pub(crate) fn exit_code_name(code: i32) -> &'static str {
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
