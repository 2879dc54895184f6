//! The image service driven directly, without HTTP: import, save and load
//! a busybox-static image; push it to a real docker-registry on loopback
//! and pull it back (through a counting proxy, to see the manifests are
//! fetched once); tag, inspect, mount, remove and prune. Runs as root (the
//! snapshots are overlay mounts).

use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_client::{ClientConfig, NoProgress, RegistryClient, Repository};
use berth_engine::{Engine, EngineConfig, EngineError};
use berth_image::ArchiveFormat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn engine(root: &Path) -> anyhow::Result<Engine> {
    let content = berth_content::ContentStore::open(root.join("content")).await?;
    let state = berth_state::State::open(root.join("state"))?;
    let snapshots = berth_snapshot::OverlaySnapshotter::open(root.join("snapshots"), &state)?;
    let registry = berth_registry::Registry::new(
        content.clone(),
        state,
        berth_registry::RegistryConfig {
            // Prune may collect at once: nothing else runs in this store.
            gc_grace_secs: 0,
            ..Default::default()
        },
    );
    let unpacker = berth_unpack::Unpacker::new(content, Arc::new(snapshots));
    Ok(Engine::new(EngineConfig {
        registry,
        client: ClientConfig::default(),
        unpacker,
        root: root.to_path_buf(),
    }))
}

/// A gzipped root file system: busybox-static as `/bin/busybox` and `/bin/sh`.
fn busybox_rootfs(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(|e| {
        anyhow::anyhow!("copying /bin/busybox (install busybox-static: scripts/deps.sh): {e}")
    })?;
    std::os::unix::fs::symlink("busybox", root.join("bin/sh"))?;
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
    let tarball = dir.join("rootfs.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-czf")
        .arg(&tarball)
        .arg(".")
        .status()?;
    anyhow::ensure!(status.success(), "tar of the busybox rootfs failed");
    Ok(tarball)
}

async fn import_busybox(engine: &Engine, dir: &Path, name: &str) -> anyhow::Result<()> {
    let tarball = busybox_rootfs(dir)?;
    let file = tokio::fs::File::open(&tarball).await?;
    let record = engine
        .images()
        .import(file, name, &[r#"CMD ["/bin/sh"]"#.to_string()], None)
        .await?;
    assert_eq!(record.reference, format!("docker.io/{name}"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn import_save_load_tag_remove_prune() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = engine(&dir.path().join("root")).await?;
    let images = engine.images();
    import_busybox(&engine, dir.path(), "e2e/busybox:1").await?;
    let imported = images.get("e2e/busybox:1")?;
    let details = images.inspect("e2e/busybox:1").await?;
    assert_eq!(
        details.config.config.and_then(|c| c.cmd),
        Some(vec!["/bin/sh".to_string()])
    );
    assert_eq!(images.history("e2e/busybox:1").await?.len(), 1);

    // Save as a `docker save` archive, streamed into a file.
    let archive = dir.path().join("busybox.tar");
    let save = images.save(&["e2e/busybox:1".to_string()], ArchiveFormat::Docker)?;
    save.write_to(tokio::fs::File::create(&archive).await?)
        .await?;
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&archive)
        .output()?;
    let names = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        names.contains("manifest.json"),
        "not a docker save archive: {names}"
    );

    // Remove it, prune what only it needed, and load it back.
    let removed = images.remove("e2e/busybox:1")?;
    assert_eq!(removed.manifest, imported.manifest);
    assert!(matches!(
        images.get("e2e/busybox:1"),
        Err(EngineError::NotFound {
            code: "not_found",
            ..
        })
    ));
    let pruned = images.prune().await?;
    assert!(pruned.snapshots_removed >= 1, "{pruned:?}");
    assert!(pruned.blobs_deleted >= 1, "{pruned:?}");
    let loaded = images
        .load(tokio::fs::File::open(&archive).await?, None)
        .await?;
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].reference, "docker.io/e2e/busybox:1");
    assert_eq!(
        loaded[0].chain_id, imported.chain_id,
        "same layer, same chain"
    );

    // Tag, then remove one name: the other stays.
    let tagged = images.tag("e2e/busybox:1", "e2e/other:2")?;
    assert_eq!(tagged.reference, "docker.io/e2e/other:2");
    images.remove("e2e/busybox:1")?;
    assert_eq!(images.list()?.len(), 1);
    assert!(images.get("e2e/other:2").is_ok());

    // Errors carry the API's codes, with no HTTP in sight.
    let e = images.tag("e2e/nothing:1", "e2e/x:1").unwrap_err();
    assert_eq!(e.code(), "not_found");
    let e = images.get("Not A Reference").unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    let e = images
        .load(&b"not an archive at all"[..], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_argument", "{e}");
    Ok(())
}

/// A TCP proxy that forwards to `upstream` and keeps every byte the client
/// sent, so a test can count the requests.
async fn recording_proxy(
    upstream: std::net::SocketAddr,
) -> anyhow::Result<(std::net::SocketAddr, Arc<Mutex<Vec<u8>>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if let Ok(mut l) = log.lock() {
                            l.extend_from_slice(&buf[..n]);
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    Ok((addr, sent))
}

fn count(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn push_then_pull_from_a_real_registry() -> anyhow::Result<()> {
    let registry =
        tokio::task::spawn_blocking(|| berth_e2e::DockerRegistry::start(Default::default()))
            .await??;
    let (proxy, sent) = recording_proxy(registry.addr).await?;
    let dir = tempfile::tempdir()?;
    let engine = engine(&dir.path().join("root")).await?;
    let images = engine.images();
    import_busybox(&engine, dir.path(), "e2e/busybox:1").await?;

    // Push to the registry (through the proxy), as PROXY/e2e/busybox:1.
    let remote = format!("{proxy}/e2e/busybox:1");
    images.tag("e2e/busybox:1", &remote)?;
    let push = images.push_request(&remote, None).await?;
    let pushed = push.run(Arc::new(NoProgress)).await?;
    let local = images.get(&remote)?;
    assert_eq!(pushed.digest, local.manifest);

    // An index for the host's platform over it, put by hand.
    let client = RegistryClient::new(ClientConfig::default())?;
    let repo = Repository::new(&proxy.to_string(), "e2e/busybox")?;
    let platform = berth_client::Platform::host();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": local.media_type,
            "digest": pushed.digest.to_string(),
            "size": pushed.size,
            "platform": { "os": platform.os, "architecture": platform.architecture },
        }],
    });
    client
        .put_manifest(
            &repo,
            "multi",
            "application/vnd.oci.image.index.v1+json",
            bytes::Bytes::from(serde_json::to_vec(&index)?),
        )
        .await?;

    // Pull both back into an empty store.
    images.remove(&remote)?;
    images.remove("e2e/busybox:1")?;
    images.prune().await?;
    assert!(images.list()?.is_empty());
    let before = sent.lock().map(|l| l.len()).unwrap_or(0);
    let pulled = images
        .pull(&remote, None, None, Arc::new(NoProgress))
        .await?;
    assert_eq!(pulled.manifest, pushed.digest);
    let multi = format!("{proxy}/e2e/busybox:multi");
    let pulled_multi = images
        .pull(&multi, None, None, Arc::new(NoProgress))
        .await?;
    assert_eq!(pulled_multi.chain_id, pulled.chain_id);
    let log = sent
        .lock()
        .map(|l| l[before..].to_vec())
        .unwrap_or_default();
    // One GET of each top-level manifest, one of the index's child (by
    // digest); no second pass over the manifests.
    assert_eq!(count(&log, "GET /v2/e2e/busybox/manifests/1 "), 1);
    assert_eq!(count(&log, "GET /v2/e2e/busybox/manifests/multi "), 1);
    assert_eq!(
        count(
            &log,
            &format!("GET /v2/e2e/busybox/manifests/{} ", pushed.digest)
        ),
        1
    );
    assert_eq!(
        count(&log, "GET /v2/e2e/busybox/manifests/"),
        3,
        "three manifests, each fetched once"
    );
    assert_eq!(count(&log, "HEAD /v2/e2e/busybox/manifests/"), 0);

    // A platform the index lacks: the API's 404 code.
    let e = images
        .pull(&multi, Some("linux/s390x"), None, Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "no_matching_platform", "{e}");
    // A tag the registry lacks: an upstream failure.
    let e = images
        .pull(
            &format!("{proxy}/e2e/busybox:absent"),
            None,
            None,
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "pull_failed", "{e}");

    // The pulled image mounts read-only with busybox in it.
    let target = dir.path().join("mnt");
    std::fs::create_dir(&target)?;
    images.mount(&remote, &target).await?;
    let has_busybox = target.join("bin/busybox").is_file();
    images.unmount(&target).await?;
    assert!(has_busybox, "the mounted image lacks /bin/busybox");
    Ok(())
}
