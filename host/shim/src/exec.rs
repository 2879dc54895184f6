//! `berth-shim exec`: one process run inside a running container, for
//! `berth exec` and health checks. A helper process of its own because
//! joining a mount namespace needs a single-threaded caller, which berthd
//! is not. It takes the container's init by a pidfd checked to be the
//! container's (the pid file may name a process that took a dead init's
//! number: see `berth_runtime::ContainerInit`), opens the container's
//! `cgroup.procs` files, then `berth_runtime::exec` does the rest; its exit
//! code is the command's (126/127 when the command could not run, as
//! `docker exec`).

use std::path::Path;

use anyhow::Context;
use berth_cgroups::Layout;
use berth_runtime::shim_files::{ExecConfig, ShimConfig};
use berth_runtime::{ContainerInit, ExecOptions, RuntimeError};

/// Run `config` in the container of `dir`; returns the exit code to exit with.
pub fn exec(dir: &Path, config: &ExecConfig) -> i32 {
    match exec_inner(dir, config) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<RuntimeError>() {
            // Its message already holds its cause.
            Some(r) => {
                eprintln!("berth: exec failed: {r}");
                match r {
                    RuntimeError::Exec { .. } => r.exit_code(),
                    _ => 126,
                }
            }
            None => {
                eprintln!("berth: exec failed: {e:#}");
                126
            }
        },
    }
}

fn exec_inner(dir: &Path, config: &ExecConfig) -> anyhow::Result<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("pid"))
        .context("reading the container's pid: is it running?")?
        .trim()
        .parse()
        .context("the container's pid file is damaged")?;
    let shim: ShimConfig =
        serde_json::from_slice(&std::fs::read(dir.join("shim.json")).context("reading shim.json")?)
            .context("parsing shim.json")?;
    let spec =
        oci_spec::runtime::Spec::load(dir.join("config.json")).context("reading config.json")?;
    let layout = Layout::detect().context("detecting the cgroup layout")?;
    let cgroup = berth_cgroups::manager_for(
        &layout,
        &berth_cgroups::container_path(&shim.cgroup_parent, &shim.id),
    );
    // Opened here, where the cgroup files are the host's; only the command
    // joins, so this helper never counts against the container's limits.
    let init = ContainerInit::open(pid, cgroup.as_ref(), &spec)?;
    let mut procs = Vec::new();
    for dir in cgroup.paths() {
        let path = dir.join("cgroup.procs");
        procs.push(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?,
        );
    }
    let opts = ExecOptions {
        args: config.cmd.clone(),
        env: config.env.clone(),
        // The ids the daemon resolved and its hooks judged, as they are:
        // never a name looked up again in the container's files.
        user: config.user.clone(),
        workdir: config.workdir.clone(),
        tty: config.tty,
        interactive: config.interactive,
    };
    let status = berth_runtime::exec(&init, &spec, &opts, &procs)?;
    Ok(status.code())
}
