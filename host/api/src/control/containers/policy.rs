//! The container events hooks see: the `pre-create` spec built from the
//! request and the image, the patch a hook may apply to the request, the
//! events of a container that exists, and the checks the `exec`, `cp` and
//! `update` handlers make before they act. Every setting that changes what
//! a container may do goes into its event.

use berth_policy::{
    ContainerEvent, ContainerSpec, CopyDirection, CopyEvent, Event, EventKind, ExecEvent, Limits,
    Mount, MountKind, Patch, UpdateEvent,
};
use berth_runtime::ExecUser;
use berth_runtime::shim_files::ShimConfig;

use super::create::RunRequest;
use super::exec::ExecRequest;
use super::mounts::Wanted;
use super::record::{ContainerRecord, Status, status_of};
use crate::control::{ControlApp, ControlError};

/// What will run, as the user asked for it and after the image's defaults.
pub(crate) fn spec_of(
    req: &RunRequest,
    wanted: &[Wanted],
    image_digest: &str,
    config: &berth_image::ContainerConfig,
    rootfs: &std::path::Path,
) -> Result<ContainerSpec, ControlError> {
    let user = req.user.clone().unwrap_or_else(|| config.user.clone());
    let resolved = berth_runtime::resolve_user(rootfs, &user)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    let entrypoint = req
        .entrypoint
        .clone()
        .or_else(|| config.entrypoint.clone())
        .unwrap_or_default();
    let cmd = match (&req.cmd, &req.entrypoint) {
        (Some(c), _) => c.clone(),
        // A new entrypoint drops the image's CMD, as in Docker.
        (None, Some(_)) => Vec::new(),
        (None, None) => config.cmd.clone().unwrap_or_default(),
    };
    Ok(ContainerSpec {
        name: req.name.clone().unwrap_or_default(),
        image: req.image.clone(),
        image_digest: image_digest.to_string(),
        user,
        uid: resolved.uid,
        gid: resolved.gid,
        command: entrypoint.into_iter().chain(cmd).collect(),
        env: config
            .env
            .iter()
            .chain(&req.env_file_lines)
            .chain(&req.env)
            .cloned()
            .collect(),
        labels: req.labels.clone(),
        image_labels: config.labels.clone(),
        limits: Limits {
            memory: positive(req.memory),
            memory_swap: positive(req.memory_swap),
            memory_reservation: positive(req.memory_reservation),
            pids: req.pids_limit.filter(|p| *p > 0),
            cpus: req.cpus,
            cpu_shares: req.cpu_shares,
            cpuset_cpus: req.cpuset_cpus.clone(),
        },
        privileged: req.privileged,
        cap_add: req.cap_add.clone(),
        cap_drop: req.cap_drop.clone(),
        no_new_privileges: req.no_new_privileges,
        seccomp_unconfined: req.seccomp_unconfined,
        network: req.network.clone().unwrap_or_else(|| "bridge".into()),
        publish: req.publish.clone(),
        mounts: wanted.iter().map(mount_of).collect(),
        read_only_rootfs: req.read_only,
        workdir: req
            .workdir
            .clone()
            .unwrap_or_else(|| config.working_dir.clone()),
        hostname: req.hostname.clone(),
        ulimits: req.ulimits.clone(),
        tty: req.tty,
        interactive: req.open_stdin,
    })
}

/// A size in Docker's convention (`-1` or `0`: no limit) as a limit.
fn positive(size: Option<i64>) -> Option<u64> {
    size.and_then(|m| u64::try_from(m).ok()).filter(|m| *m > 0)
}

fn mount_of(w: &Wanted) -> Mount {
    match w {
        Wanted::Bind {
            source,
            destination,
            read_only,
        } => Mount {
            kind: MountKind::Bind,
            source: source.clone(),
            target: destination.clone(),
            read_only: *read_only,
            anonymous: false,
        },
        Wanted::Volume {
            name,
            destination,
            read_only,
            anonymous,
        } => Mount {
            kind: MountKind::Volume,
            source: name.clone(),
            target: destination.clone(),
            read_only: *read_only,
            anonymous: *anonymous,
        },
        Wanted::Tmpfs { destination } => Mount {
            kind: MountKind::Tmpfs,
            source: String::new(),
            target: destination.clone(),
            read_only: false,
            anonymous: false,
        },
    }
}

/// A container's limits as its `shim.json` records them.
pub(crate) fn limits_of(c: &ShimConfig) -> Limits {
    Limits {
        memory: positive(c.memory),
        memory_swap: positive(c.memory_swap),
        memory_reservation: positive(c.memory_reservation),
        // Docker: 0 and -1 both lift the pids limit.
        pids: c.pids_limit.filter(|p| *p > 0),
        cpus: c.cpus.filter(|c| *c > 0.0),
        cpu_shares: c.cpu_shares,
        cpuset_cpus: c.cpuset_cpus.clone().filter(|c| !c.is_empty()),
    }
}

/// Applies a pre-create patch to the request: labels and environment
/// entries added or replaced, limits set where the patch sets them.
pub(crate) fn apply(req: &mut RunRequest, patch: &Patch) {
    req.labels.extend(patch.labels.clone());
    req.env.extend(patch.env.iter().cloned());
    let l = &patch.limits;
    if let Some(m) = l.memory.and_then(|m| i64::try_from(m).ok()) {
        req.memory = Some(m);
    }
    if let Some(m) = l.memory_swap.and_then(|m| i64::try_from(m).ok()) {
        req.memory_swap = Some(m);
    }
    if let Some(m) = l.memory_reservation.and_then(|m| i64::try_from(m).ok()) {
        req.memory_reservation = Some(m);
    }
    if l.cpuset_cpus.is_some() {
        req.cpuset_cpus.clone_from(&l.cpuset_cpus);
    }
    if l.pids.is_some() {
        req.pids_limit = l.pids;
    }
    if l.cpus.is_some() {
        req.cpus = l.cpus;
    }
    if l.cpu_shares.is_some() {
        req.cpu_shares = l.cpu_shares;
    }
}

pub(crate) fn event_of(record: &ContainerRecord, exit_code: Option<i32>) -> ContainerEvent {
    ContainerEvent {
        id: record.id.clone(),
        name: record.name.clone(),
        image: record.image.clone(),
        labels: record.labels.clone(),
        exit_code,
    }
}

/// Fires `pre-exec` for a command about to run in `record` as `ids` (see
/// `exec::exec_user`: resolved once, and run as they are): `Err` (403)
/// when a hook denies it.
pub(crate) async fn judge_exec(
    app: &ControlApp,
    record: &ContainerRecord,
    req: &ExecRequest,
    ids: &ExecUser,
) -> Result<(), ControlError> {
    if !app.policy.wants(EventKind::PreExec) {
        return Ok(());
    }
    let event = Event::PreExec(ExecEvent {
        container: event_of(record, None),
        command: req.cmd.clone(),
        env: req.env.clone(),
        user: req.user.clone().unwrap_or_default(),
        uid: ids.uid,
        gid: ids.gid,
        workdir: req.workdir.clone(),
        tty: req.tty,
        interactive: req.stdin,
        detach: req.detach,
    });
    app.policy.check(event).await?;
    Ok(())
}

/// Fires `pre-copy` for a `cp` into or out of `record` at `path` (not for
/// the `stat` queries a `cp` starts with, which move no data).
pub(crate) async fn judge_copy(
    app: &ControlApp,
    record: &ContainerRecord,
    direction: CopyDirection,
    path: &str,
) -> Result<(), ControlError> {
    if !app.policy.wants(EventKind::PreCopy) {
        return Ok(());
    }
    let event = Event::PreCopy(CopyEvent {
        container: event_of(record, None),
        direction,
        path: path.to_owned(),
        running: matches!(status_of(&record.dir), Status::Running { .. }),
    });
    app.policy.check(event).await?;
    Ok(())
}

/// Fires `pre-update` for `record`'s limits going from `old` to `new`.
pub(crate) async fn judge_update(
    app: &ControlApp,
    record: &ContainerRecord,
    old: &ShimConfig,
    new: &ShimConfig,
) -> Result<(), ControlError> {
    if !app.policy.wants(EventKind::PreUpdate) {
        return Ok(());
    }
    let event = Event::PreUpdate(UpdateEvent {
        container: event_of(record, None),
        before: limits_of(old),
        after: limits_of(new),
    });
    app.policy.check(event).await?;
    Ok(())
}
