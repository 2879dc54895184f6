//! 16 concurrent skopeo pushes (four image variants sharing two of their three layers) while
//! `berth registry gc` runs; all pushes succeed, and everything pulls back intact.

use berth_e2e::{Berthd, fixture, suites};
use std::time::Duration;

const PUSHES: u32 = 16;
const VARIANTS: u32 = 4;

#[test]
fn sixteen_concurrent_pushes_with_gc_running() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let images = (0..VARIANTS)
        .map(fixture::variant)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let host = daemon.registry();

    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..PUSHES)
            .map(|i| {
                let image = &images[(i % VARIANTS) as usize];
                let host = &host;
                s.spawn(move || {
                    berth_e2e::skopeo::copy(
                        &image.oci_ref(),
                        &format!("docker://{host}/e2e/concurrent-{i}:v{}", i % VARIANTS),
                        None,
                        None,
                    )
                })
            })
            .collect();
        // GC while the pushes are in flight.
        let mut gc_runs = Vec::new();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            gc_runs.push(daemon.berth_ok(&["registry", "gc"]));
        }
        let pushes: Vec<anyhow::Result<()>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("push thread panicked")))
            })
            .collect();
        (pushes, gc_runs)
    });
    let (pushes, gc_runs) = results;
    for (i, r) in gc_runs.iter().enumerate() {
        if let Err(e) = r {
            anyhow::bail!("berth registry gc run {i} during the pushes failed: {e:#}");
        }
    }
    for (i, r) in pushes.iter().enumerate() {
        if let Err(e) = r {
            anyhow::bail!("push {i} failed: {e:#}");
        }
    }

    // Once more after all pushes; nothing tagged may go.
    daemon.berth_ok(&["registry", "gc"])?;
    for i in 0..PUSHES {
        let image = &images[(i % VARIANTS) as usize];
        suites::pull_and_compare(
            image,
            &host,
            &format!("e2e/concurrent-{i}"),
            &format!("v{}", i % VARIANTS),
            None,
        )?;
    }
    berth_e2e::layout::verify_content_addressed(&daemon.root)?;
    Ok(())
}
