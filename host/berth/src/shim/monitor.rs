//! The shim's one job, start to end.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::Context;
use berth_cgroups::{CgroupManager, Layout, Limit, Resources};
use berth_runtime::{Container, Stdio};

use berth_api::control::containers::{ExitRecord, ShimConfig, write_atomic};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn resources(c: &ShimConfig) -> Resources {
    Resources {
        cpus: c.cpus,
        cpu_shares: c.cpu_shares,
        cpuset_cpus: c.cpuset_cpus.clone(),
        cpuset_mems: None,
        memory: c.memory.map(Limit::from_docker),
        memory_swap: c.memory_swap.map(Limit::from_docker),
        memory_reservation: c.memory_reservation.map(Limit::from_docker),
        pids_limit: c.pids_limit.map(Limit::from_docker),
        blkio_weight: c.blkio_weight,
    }
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<OwnedFd> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .with_context(|| format!("opening {name}"))?;
    Ok(OwnedFd::from(f))
}

fn record(dir: &Path, rec: &ExitRecord) -> anyhow::Result<()> {
    write_atomic(&dir.join("exit.json"), &serde_json::to_vec(rec)?).context("writing exit.json")
}

/// Run the container described in `dir` to its end. Every failure ends in
/// an `exit.json` the daemon can report.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    write_atomic(
        &dir.join("shim.pid"),
        std::process::id().to_string().as_bytes(),
    )
    .context("writing shim.pid")?;
    let config: ShimConfig = serde_json::from_slice(
        &std::fs::read(dir.join("shim.json")).context("reading shim.json")?,
    )?;
    let spec =
        oci_spec::runtime::Spec::load(dir.join("config.json")).context("reading config.json")?;
    let layout = Layout::detect().context("detecting the cgroup layout")?;
    let cgroup = berth_cgroups::manager_for(
        &layout,
        &berth_cgroups::container_path(&config.cgroup_parent, &config.id),
    );
    let failed = |code: i32, error: String, cgroup: &dyn CgroupManager| {
        let _ = cgroup.destroy();
        record(
            dir,
            &ExitRecord {
                code,
                oom_killed: false,
                finished_at: now(),
                error: Some(error),
            },
        )
    };
    if let Err(e) = cgroup.create(&resources(&config)) {
        return failed(125, format!("setting up the cgroup: {e}"), cgroup.as_ref());
    }
    let stdio = Stdio {
        stdin: None,
        stdout: Some(log_file(dir, "stdout.log")?),
        stderr: Some(log_file(dir, "stderr.log")?),
    };
    let mut container = match Container::create(&config.id, &spec, stdio) {
        Ok(c) => c,
        Err(e) => return failed(e.exit_code(), e.to_string(), cgroup.as_ref()),
    };
    if let Err(e) = cgroup.add_process(container.pid()) {
        let _ = container.kill(nix::sys::signal::Signal::SIGKILL);
        let _ = container.wait();
        return failed(
            125,
            format!("placing the container in its cgroup: {e}"),
            cgroup.as_ref(),
        );
    }
    write_atomic(&dir.join("pid"), container.pid().to_string().as_bytes())
        .context("writing pid")?;
    // Wait for the daemon's go (networking is set up by then); EOF without
    // a byte means the daemon gave up on this container.
    let mut go = [0u8; 1];
    let got = File::open(dir.join("start"))
        .and_then(|mut f| f.read(&mut go))
        .unwrap_or(0);
    if got == 0 {
        let _ = container.kill(nix::sys::signal::Signal::SIGKILL);
        let _ = container.wait();
        return failed(
            125,
            "berthd did not start the container".into(),
            cgroup.as_ref(),
        );
    }
    if let Err(e) = container.start() {
        let _ = container.wait();
        return failed(e.exit_code(), e.to_string(), cgroup.as_ref());
    }
    let status = container.wait();
    let oom_killed = cgroup.oom_killed().unwrap_or(false);
    if let Err(e) = cgroup.destroy() {
        tracing::warn!(error = %e, "removing the cgroup");
    }
    let code = match status {
        Ok(s) => s.code(),
        Err(_) => 125,
    };
    record(
        dir,
        &ExitRecord {
            code,
            oom_killed,
            finished_at: now(),
            error: None,
        },
    )
}
