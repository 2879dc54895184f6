//! The container events hooks see: the `pre-create` spec built from the
//! request and the image, the patch a hook may apply to the request, and
//! the events of a container that exists.

use berth_policy::{ContainerEvent, ContainerSpec, Limits, Patch};

use super::create::RunRequest;
use super::record::ContainerRecord;
use crate::control::ControlError;

/// What will run, as the user asked for it and after the image's defaults.
pub(crate) fn spec_of(
    req: &RunRequest,
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
    let mut labels = config.labels.clone();
    labels.extend(req.labels.clone());
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
        labels,
        limits: Limits {
            memory: req
                .memory
                .and_then(|m| u64::try_from(m).ok())
                .filter(|m| *m > 0),
            pids: req.pids_limit.filter(|p| *p > 0),
            cpus: req.cpus,
            cpu_shares: req.cpu_shares,
        },
        privileged: req.privileged,
        cap_add: req.cap_add.clone(),
        network: req.network.clone().unwrap_or_else(|| "bridge".into()),
        mounts: req.volumes.iter().chain(&req.mounts).cloned().collect(),
        read_only_rootfs: req.read_only,
    })
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
