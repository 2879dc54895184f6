//! `POST /v1/containers/{id}/update`: `docker update` — new resource
//! limits, applied live to a running container's cgroup and recorded in
//! its `shim.json` (what `inspect` shows and a later start applies).

use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use berth_cgroups::{CgroupManager, Layout, Limit, Resources};

use super::record::{Status, find, status_of};
use crate::control::{ControlError, Shared};
use berth_runtime::shim_files::{ShimConfig, write_atomic};

pub use berth_api_types::UpdateRequest;
use berth_api_types::UpdateResponse;

fn resources(c: &ShimConfig) -> Resources {
    Resources {
        cpus: c.cpus,
        cpu_shares: c.cpu_shares,
        cpuset_cpus: c.cpuset_cpus.clone(),
        cpuset_mems: None,
        memory: c.memory.map(Limit::from_docker),
        memory_swap: c.memory_swap.map(Limit::from_docker),
        memory_reservation: c.memory_reservation.map(Limit::from_docker),
        // Docker: 0 and -1 both lift the pids limit.
        pids_limit: c.pids_limit.map(|p| {
            if p == 0 {
                Limit::Unlimited
            } else {
                Limit::from_docker(p)
            }
        }),
        blkio_weight: c.blkio_weight,
        // Made with the cgroup; an update does not touch them.
        devices: Vec::new(),
    }
}

pub(crate) async fn update(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    axum::Json(req): axum::Json<UpdateRequest>,
) -> Result<impl IntoResponse, ControlError> {
    let record = find(&app, &key)?;
    let path = record.dir.join("shim.json");
    let old: ShimConfig = serde_json::from_slice(
        &std::fs::read(&path)
            .map_err(|e| ControlError::internal(format!("reading {}: {e}", path.display())))?,
    )
    .map_err(|e| ControlError::internal(format!("parsing {}: {e}", path.display())))?;
    let mut new = old.clone();
    new.memory = req.memory.or(old.memory);
    new.memory_swap = req.memory_swap.or(old.memory_swap);
    new.memory_reservation = req.memory_reservation.or(old.memory_reservation);
    new.cpus = req.cpus.or(old.cpus);
    new.cpu_shares = req.cpu_shares.or(old.cpu_shares);
    new.cpuset_cpus = req.cpuset_cpus.clone().or(old.cpuset_cpus.clone());
    new.pids_limit = req.pids_limit.or(old.pids_limit);
    let merged = resources(&new);
    merged.validate().map_err(|e| {
        ControlError::bad_request(format!("updating container {}: {e}", record.name))
    })?;
    super::policy::judge_update(&app, &record, &old, &new).await?;
    if let Status::Running { .. } = status_of(&record.dir) {
        // Only what changed is written; memory and swap go together, as
        // their order of writing depends on both.
        let memory_changed = req.memory.is_some() || req.memory_swap.is_some();
        let delta = Resources {
            cpus: req.cpus.and(merged.cpus),
            cpu_shares: req.cpu_shares.and(merged.cpu_shares),
            cpuset_cpus: req.cpuset_cpus.as_ref().and(merged.cpuset_cpus.clone()),
            cpuset_mems: None,
            memory: if memory_changed { merged.memory } else { None },
            memory_swap: if memory_changed {
                merged.memory_swap
            } else {
                None
            },
            memory_reservation: req.memory_reservation.and(merged.memory_reservation),
            pids_limit: req.pids_limit.and(merged.pids_limit),
            blkio_weight: None,
            devices: Vec::new(),
        };
        let layout = Layout::detect().map_err(ControlError::internal)?;
        let cg: Box<dyn CgroupManager> = berth_cgroups::manager_for(
            &layout,
            &berth_cgroups::container_path(&old.cgroup_parent, &old.id),
        );
        let name = record.name.clone();
        tokio::task::spawn_blocking(move || cg.apply(&delta))
            .await
            .map_err(ControlError::internal)?
            .map_err(|e| ControlError::bad_request(format!("updating container {name}: {e}")))?;
    }
    let bytes = serde_json::to_vec(&new).map_err(ControlError::internal)?;
    write_atomic(&path, &bytes)
        .map_err(|e| ControlError::internal(format!("writing {}: {e}", path.display())))?;
    Ok(axum::Json(UpdateResponse {
        id: record.id,
        name: record.name,
        resources: serde_json::to_value(new).map_err(ControlError::internal)?,
    }))
}
