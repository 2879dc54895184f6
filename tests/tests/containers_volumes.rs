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

/// The xattr `setcap cap_net_raw+ep` writes: `struct vfs_cap_data`,
/// revision 2, effective, permitted CAP_NET_RAW (13).
fn net_raw_capability() -> Vec<u8> {
    [0x0200_0001u32, 1 << 13, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

fn c_path(path: &std::path::Path) -> anyhow::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::CString::new(path.as_os_str().as_bytes())?)
}

fn set_capability(path: &std::path::Path, value: &[u8]) -> anyhow::Result<()> {
    let path = c_path(path)?;
    // SAFETY: a NUL-terminated path and name, and a buffer of `value.len()` bytes.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    anyhow::ensure!(rc == 0, "setxattr: {}", std::io::Error::last_os_error());
    Ok(())
}

fn capability(path: &std::path::Path) -> anyhow::Result<Option<Vec<u8>>> {
    let path = c_path(path)?;
    let mut buf = vec![0u8; 256];
    // SAFETY: a NUL-terminated path and name, and a buffer of `buf.len()` bytes.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        anyhow::ensure!(e.raw_os_error() == Some(libc::ENODATA), "getxattr: {e}");
        return Ok(None);
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// A new volume seeded from the image keeps a file's owner, set-id bits
/// and file capability together (a change of owner drops the last two, so
/// they are set after it).
#[test]
fn a_seeded_volume_keeps_file_capabilities_and_set_id_bits() -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let caps = net_raw_capability();
    berth_e2e::containers::import_busybox_with(
        &daemon,
        "e2e/caps:1",
        &[r#"VOLUME ["/data"]"#],
        |root| {
            let data = root.join("data");
            std::fs::create_dir_all(&data)?;
            let ping = data.join("ping");
            std::fs::copy(root.join("bin/busybox"), &ping)?;
            std::os::unix::fs::chown(&ping, Some(1234), Some(5678))?;
            std::fs::set_permissions(&ping, std::fs::Permissions::from_mode(0o6755))?;
            set_capability(&ping, &caps)
        },
    )?;
    daemon.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "caps:/data",
        "e2e/caps:1",
        "true",
    ])?;
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.berth_ok(&["volume", "inspect", "caps"])?)?;
    let ping =
        std::path::PathBuf::from(inspect["volume"]["mountpoint"].as_str().unwrap_or_default())
            .join("ping");
    let m = std::fs::metadata(&ping)?;
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o6755, 1234, 5678));
    assert_eq!(
        capability(&ping)?,
        Some(caps),
        "the file capability was dropped in the volume"
    );
    Ok(())
}
