//! Where the time of a bridge endpoint goes: attach and detach cycles on a
//! private bridge, with the library's debug timing events (target
//! `berth_network::timing`) collected per step. Each cycle mimics
//! `berth run --rm … true`: a fresh network namespace (as the runtime makes
//! it), attach, the namespace's last holder goes away (the container
//! exited), detach.
//!
//!   cargo run --release -p berth-network --example bridge_cost -- \
//!       [--cycles N] [--state-in DIR]
//!
//! Needs root. Uses its own bridge `bcost0`, veths `vcost-…`, the subnet
//! 10.213.224.0/24 (never routed anywhere: NAT is off) and a temporary state
//! directory in DIR (default: the system's temporary directory; the sled
//! flush is only measured on a disk); all of it is removed at the end. Prints the median and p90 of
//! every step in microseconds.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use berth_network::{EndpointSpec, NetworkConfig, Networks, Subnet};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

type Samples = Arc<Mutex<BTreeMap<String, Vec<u64>>>>;

/// Collects `step` and `us` fields of timing events.
struct Steps(Samples);

#[derive(Default)]
struct StepVisit {
    step: Option<String>,
    us: Option<u64>,
}

impl Visit for StepVisit {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.step = Some(value.to_owned());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "us" {
            self.us = Some(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "step" {
            self.step = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Steps {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "berth_network::timing" {
            return;
        }
        let mut v = StepVisit::default();
        event.record(&mut v);
        if let (Some(step), Some(us), Ok(mut samples)) = (v.step, v.us, self.0.lock()) {
            samples.entry(step).or_default().push(us);
        }
    }
}

fn record(samples: &Samples, step: &str, since: Instant) {
    let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Ok(mut s) = samples.lock() {
        s.entry(step.to_owned()).or_default().push(us);
    }
}

/// A new network namespace held only by the returned file, as a container's
/// is held only by its processes.
fn new_netns() -> anyhow::Result<File> {
    let made = std::thread::spawn(|| -> anyhow::Result<File> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        Ok(File::open("/proc/thread-self/ns/net")?)
    })
    .join();
    match made {
        Ok(r) => r,
        Err(_) => anyhow::bail!("the namespace thread panicked"),
    }
}

fn percentile(v: &mut [u64], p: usize) -> u64 {
    v.sort_unstable();
    let i = (v.len() * p).div_ceil(100).max(1) - 1;
    v.get(i).copied().unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut cycles = 50usize;
    let mut state_in = std::env::temp_dir();
    let mut teardown = Teardown::Detach;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cycles" => cycles = args.next().unwrap_or_default().parse()?,
            "--state-in" => state_in = args.next().unwrap_or_default().into(),
            "--teardown" => {
                teardown = match args.next().as_deref() {
                    Some("detach") => Teardown::Detach,
                    Some("kernel") => Teardown::Kernel,
                    Some("background") => Teardown::Background,
                    other => anyhow::bail!("--teardown detach|kernel|background, not {other:?}"),
                }
            }
            other => anyhow::bail!(
                "unknown argument {other}; usage: bridge_cost [--cycles N] [--state-in DIR]"
            ),
        }
    }
    let samples: Samples = Arc::default();
    let subscriber = Registry::default().with(Steps(samples.clone()));
    tracing::subscriber::set_global_default(subscriber)?;

    let dir = tempfile::tempdir_in(&state_in)?;
    let state = berth_state::State::open(dir.path().join("state"))?;
    let config = NetworkConfig {
        default_subnet: Subnet::new(Ipv4Addr::new(10, 213, 224, 0), 24)?,
        default_bridge: "bcost0".into(),
        pool: Subnet::new(Ipv4Addr::new(10, 213, 224, 0), 20)?,
        bridge_prefix: "bcost-".into(),
        veth_prefix: "vcost-".into(),
        nat: false,
    };
    let nets = Networks::open(&state, config)?;
    let hosts = dir.path().join("hosts");

    let result = async {
        for i in 0..cycles + 2 {
            let id = format!("c{i:015}");
            let t = Instant::now();
            let ns = new_netns()?;
            let path = std::path::PathBuf::from(format!("/proc/self/fd/{}", {
                use std::os::fd::AsRawFd;
                ns.as_raw_fd()
            }));
            let spec = EndpointSpec {
                aliases: vec![id.clone()],
                hosts_path: Some(hosts.clone()),
                ..Default::default()
            };
            // Two warm-up cycles: the bridge is created in the first.
            let warm = i >= 2;
            if warm {
                record(&samples, "(runtime) new netns", t);
            }
            let t = Instant::now();
            let ep = nets.attach(&path, &id, "bridge", spec).await?;
            if warm {
                record(&samples, "attach total", t);
            }
            drop(ns);
            let t = Instant::now();
            match teardown {
                Teardown::Detach => {}
                Teardown::Kernel => {
                    wait_gone(&ep.veth_host).await?;
                    if warm {
                        record(&samples, "kernel: host veth gone after netns", t);
                    }
                }
                Teardown::Background => {
                    let name = ep.veth_host.clone();
                    let deleter = tokio::spawn(async move { delete_link(&name).await });
                    wait_gone(&ep.veth_host).await?;
                    if warm {
                        record(&samples, "background: host veth gone", t);
                    }
                    deleter.await??;
                    if warm {
                        record(&samples, "background: RTM_DELLINK acked", t);
                    }
                }
            }
            let t = Instant::now();
            nets.detach_all(&id).await?;
            if warm {
                record(&samples, "detach total", t);
            } else if let Ok(mut s) = samples.lock() {
                s.clear();
            }
        }
        anyhow::Ok(())
    }
    .await;
    let removed = delete_link("bcost0").await;

    let mut all = samples.lock().map(|s| s.clone()).unwrap_or_default();
    println!(
        "# {cycles} cycles, state in {}, load {}",
        state_in.display(),
        loadavg()
    );
    println!(
        "{:<40} {:>9} {:>9} {:>6}",
        "step (µs)", "median", "p90", "n"
    );
    for (step, v) in all.iter_mut() {
        let n = v.len();
        println!(
            "{step:<40} {:>9} {:>9} {n:>6}",
            percentile(v, 50),
            percentile(v, 90)
        );
    }
    result?;
    removed?;
    Ok(())
}

/// How the host end of a dead container's veth goes away.
#[derive(Clone, Copy)]
enum Teardown {
    /// `Networks::detach` deletes it.
    Detach,
    /// The kernel deletes it with the namespace; wait until it is gone.
    Kernel,
    /// Another task deletes it; wait until it is no longer visible.
    Background,
}

/// Wait until link `name` no longer exists on the host.
async fn wait_gone(name: &str) -> anyhow::Result<()> {
    let path = std::path::Path::new("/sys/class/net").join(name);
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while path.exists() {
        anyhow::ensure!(Instant::now() < deadline, "{name} still there after 5 s");
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
    Ok(())
}

/// The bridge is the network's and outlives its endpoints: remove it here.
async fn delete_link(name: &str) -> anyhow::Result<()> {
    use futures::TryStreamExt;
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    if let Some(link) = links.try_next().await? {
        handle.link().del(link.header.index).execute().await?;
    }
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
