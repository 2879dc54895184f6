//! 16 concurrent skopeo pushes (four image variants sharing two of their three layers) while
//! `berth registry gc` runs; all pushes succeed, and everything pulls back intact.

use berth_e2e::{Berthd, fixture, suites};
use std::time::Duration;

const PUSHES: u32 = 16;
const VARIANTS: u32 = 4;
const GRACE_SECS: u64 = 5;
const ORPHANS: u64 = 3;

/// Upload a blob into a repository and never reference it from a manifest.
fn upload_orphan(daemon: &Berthd, i: u64) -> anyhow::Result<String> {
    let data = format!("orphan blob {i} that no manifest will ever name");
    let digest = berth_e2e::sha256_digest(data.as_bytes());
    let target = berth_e2e::http::with_query("/v2/e2e/orphans/blobs/uploads/", "digest", &digest);
    let resp = berth_e2e::http::Request::post(&target)
        .body(data)
        .send(daemon.addr)?;
    anyhow::ensure!(
        resp.status == 201,
        "orphan upload answered {}: {}",
        resp.status,
        resp.text()
    );
    Ok(digest)
}

/// `blobs_deleted` from the JSON `berth registry gc` prints.
fn deleted_count(out: &str) -> anyhow::Result<u64> {
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    v["blobs_deleted"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("gc printed {out}"))
}

#[test]
fn sixteen_concurrent_pushes_with_gc_running() -> anyhow::Result<()> {
    // A short grace period, so that GC really deletes during the pushes:
    // orphans older than it go, blobs of pushes in flight must stay.
    let config = Berthd::CONFIG_AUTH_NONE.replace(
        "gc_grace_secs = 600",
        &format!("gc_grace_secs = {GRACE_SECS}"),
    );
    let daemon = Berthd::start(&config)?;
    let images = (0..VARIANTS)
        .map(fixture::variant)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let host = daemon.registry();
    let orphans: Vec<String> = (0..ORPHANS)
        .map(|i| upload_orphan(&daemon, i))
        .collect::<anyhow::Result<_>>()?;
    std::thread::sleep(Duration::from_secs(GRACE_SECS + 2));

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
            gc_runs.push(
                daemon
                    .berth_ok(&["registry", "gc"])
                    .and_then(|out| deleted_count(&out)),
            );
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
    let mut deleted_during_pushes = 0;
    for (i, r) in gc_runs.iter().enumerate() {
        match r {
            Ok(n) => deleted_during_pushes += n,
            Err(e) => anyhow::bail!("berth registry gc run {i} during the pushes failed: {e:#}"),
        }
    }
    assert_eq!(
        deleted_during_pushes, ORPHANS,
        "GC during the pushes should have deleted exactly the {ORPHANS} orphan blobs"
    );
    for d in &orphans {
        assert!(
            !daemon
                .root
                .join("content/blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
                .exists(),
            "orphan {d} still on disk"
        );
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
