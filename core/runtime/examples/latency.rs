//! Start-to-exit latency of `true` in a container (root only): builds a
//! busybox rootfs in a temp dir, runs create + start + wait 50 times and
//! prints the median and the spread. `cargo run -p berth-runtime --example latency [runs]`.

use std::time::{Duration, Instant};

use berth_runtime::{Container, ImageDefaults, RunOptions, Stdio, build_spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", root.join("bin/true"))?;
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;

    let opts = RunOptions {
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        let spec = build_spec(&format!("lat{i}"), &root, &ImageDefaults::default(), &opts)?;
        let mut c = Container::create("lat", &spec, Stdio::default())?;
        c.start()?;
        let code = c.wait()?.code();
        times.push(start.elapsed());
        if code != 0 {
            return Err(format!("run {i}: exit code {code}").into());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "berth-runtime `true`: median {:.2} ms, min {:.2} ms, p90 {:.2} ms over {runs} runs",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs * 9 / 10]),
    );
    Ok(())
}
