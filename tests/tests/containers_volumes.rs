//! Named volumes: data outlives its containers, a new volume is seeded
//! from the image, a volume in use cannot be removed, `--mount` works, and
//! anonymous volumes go with `--rm`.

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

#[test]
fn volumes_outlive_containers() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    daemon.berth_ok(&["volume", "create", "data"])?;
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        BUSYBOX,
        "sh",
        "-c",
        "echo kept > /data/file",
    ])?;
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,source=data,target=/other",
        BUSYBOX,
        "cat",
        "/other/file",
    ])?;
    assert_eq!(out, "kept\n");

    // A new volume mounted on /etc starts with the image's /etc.
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "etc-copy:/etc",
        BUSYBOX,
        "cat",
        "/etc/passwd",
    ])?;
    assert!(out.starts_with("root:x:0:0:"), "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["volume", "inspect", "etc-copy"])?)?;
    let mountpoint =
        std::path::PathBuf::from(inspect["volume"]["mountpoint"].as_str().unwrap_or_default());
    assert!(mountpoint.join("passwd").exists(), "{inspect:#}");

    // In use: refused; after the container is gone: removable.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "data:/data",
        BUSYBOX,
        "sleep",
        "30",
    ])?;
    assert!(
        !daemon.berth(&["volume", "rm", "data"])?.status.success(),
        "removed a volume in use"
    );
    daemon.berth_ok(&["rm", "-f", "user"])?;
    daemon.berth_ok(&["volume", "rm", "data"])?;
    assert!(
        !daemon
            .berth_ok(&["volume", "ls"])?
            .lines()
            .any(|l| l == "data")
    );

    // An anonymous volume (-v /path) goes with --rm.
    let before = daemon.berth_ok(&["volume", "ls"])?;
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/scratch",
        BUSYBOX,
        "sh",
        "-c",
        "echo x > /scratch/f",
    ])?;
    assert_eq!(daemon.berth_ok(&["volume", "ls"])?, before);
    Ok(())
}
