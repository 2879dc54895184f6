//! berth's runtime path alone, for `bench/run.sh` (root only): what
//! `berth-shim` does for one container, without the daemon, the HTTP hop,
//! snapshots or networking — build the spec, create, place the process in
//! a fresh cgroup in every mounted hierarchy, start, wait, delete (remove
//! the cgroup, drop the handle).
//!
//!   run_bench ROOTFS [--runs N] [--id ID] [--cmd ARG]... [--no-cgroup]
//!
//! ROOTFS is an existing root file system directory (bench/run.sh passes
//! the same busybox tree runc and crun get). Each run prints its
//! start-to-exit time in milliseconds on its own line; with `--runs N`
//! (N > 1) the last line is a summary. bench/run.sh runs it with `--runs 1`
//! and times the whole process from outside, as it does for `runc run`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::{Container, ImageDefaults, RunOptions, Stdio, build_spec};

const CGROUP_PARENT: &str = "berth-runbench";

/// The cgroup directories of `id`: one per distinct mounted hierarchy
/// under /sys/fs/cgroup (co-mounted controllers share one).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut seen = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.procs").exists() {
        // cgroup v2 only.
        return vec![root.join(CGROUP_PARENT).join(id)];
    }
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let p = e.path();
        if !p.join("cgroup.procs").exists() {
            continue;
        }
        let canon = std::fs::canonicalize(&p).unwrap_or(p.clone());
        if seen.contains(&canon) {
            continue;
        }
        seen.push(canon);
        dirs.push(p.join(CGROUP_PARENT).join(id));
    }
    dirs
}

/// Create `dir` and its missing parents; in a v1 cpuset hierarchy a new
/// cgroup starts with empty `cpuset.cpus`/`cpuset.mems` and must inherit
/// them before a process can join (as runc and berth-cgroups do).
fn create_cgroup(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_cgroup(parent)?;
        std::fs::create_dir(dir)?;
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let own = dir.join(f);
            if own.exists() && std::fs::read_to_string(&own)?.trim().is_empty() {
                std::fs::write(&own, std::fs::read_to_string(parent.join(f))?.trim())?;
            }
        }
    }
    Ok(())
}

fn remove_cgroups(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

fn once(
    rootfs: &Path,
    id: &str,
    cmd: &[String],
    cgroups: bool,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let opts = RunOptions {
        cmd: Some(cmd.to_vec()),
        ..Default::default()
    };
    let spec = build_spec(id, rootfs, &ImageDefaults::default(), &opts)?;
    let dirs = if cgroups { cgroup_dirs(id) } else { Vec::new() };
    for d in &dirs {
        if let Err(e) = create_cgroup(d) {
            remove_cgroups(&dirs);
            return Err(format!("creating {}: {e}", d.display()).into());
        }
    }
    let result = (|| -> Result<i32, Box<dyn std::error::Error>> {
        let mut c = Container::create(id, &spec, Stdio::default())?;
        for d in &dirs {
            std::fs::write(d.join("cgroup.procs"), c.pid().to_string())
                .map_err(|e| format!("joining {}: {e}", d.display()))?;
        }
        c.start()?;
        Ok(c.wait()?.code())
        // The handle drops here: the container is deleted.
    })();
    remove_cgroups(&dirs);
    let code = result?;
    let took = start.elapsed();
    if code != 0 {
        return Err(format!("{id}: exit code {code}").into());
    }
    Ok(took)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut rootfs = None;
    let mut runs = 1usize;
    let mut id = format!("rb{}", std::process::id());
    let mut cmd = Vec::new();
    let mut cgroups = true;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            "--id" => id = args.next().ok_or("--id ID")?,
            "--cmd" => cmd.push(args.next().ok_or("--cmd ARG")?),
            "--no-cgroup" => cgroups = false,
            _ if rootfs.is_none() => rootfs = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a}").into()),
        }
    }
    let rootfs = rootfs
        .ok_or("usage: run_bench ROOTFS [--runs N] [--id ID] [--cmd ARG]... [--no-cgroup]")?;
    if cmd.is_empty() {
        cmd.push("true".into());
    }
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = once(&rootfs, &format!("{id}-{i}"), &cmd, cgroups)?;
        println!("{:.3}", t.as_secs_f64() * 1000.0);
        times.push(t);
    }
    if runs > 1 {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "# in-process: median {:.3} ms, min {:.3} ms, p90 {:.3} ms over {runs} runs",
            ms(times[runs / 2]),
            ms(times[0]),
            ms(times[runs * 9 / 10]),
        );
    }
    Ok(())
}
