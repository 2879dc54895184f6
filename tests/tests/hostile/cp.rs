//! `berth cp` between a container and the host: what a container plants
//! must not arrive on the host as a setuid program or a device node any
//! local user can use, and a read-only mount stays read-only to `cp` into
//! a container, running or stopped.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

fn output(daemon: &Berthd, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = daemon.berth(args)?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Wait until `path` exists in running container `name`.
fn wait_for_file(daemon: &Berthd, name: &str, path: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !daemon
        .berth(&["exec", name, "test", "-e", path])?
        .status
        .success()
    {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no {path} in container {name}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// A container (root, with CAP_MKNOD as Docker's default) plants a setuid
/// and a setgid copy of a shell, a block device for a loop disk, a
/// character device and a FIFO; `berth cp` out, run by root on the host,
/// must not recreate any of them with its power.
#[test]
fn cp_out_strips_setuid_and_skips_device_nodes() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "planter",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "mkdir -p /x/sub && cp /bin/busybox /x/suid && chmod 4755 /x/suid \
         && cp /bin/busybox /x/sub/sgid && chmod 2755 /x/sub/sgid \
         && mkdir /x/sticky && chmod 1777 /x/sticky \
         && echo plain > /x/plain && chmod 640 /x/plain \
         && mknod /x/blk b 7 0 && mknod /x/sub/chr c 1 3 && mkfifo /x/fifo \
         && touch /x/done && exec sleep 1000",
    ])?;
    wait_for_file(&daemon, "planter", "/x/done")?;
    let host = tempfile::tempdir()?;
    let out = host.path().join("out");
    let (ok, stdout, stderr) = output(&daemon, &["cp", "planter:/x", &out.to_string_lossy()])?;
    assert!(ok, "cp out failed: {stdout}{stderr}");
    let mode =
        |p: &str| -> anyhow::Result<u32> { Ok(std::fs::symlink_metadata(out.join(p))?.mode()) };
    assert_eq!(mode("suid")? & 0o7777, 0o755, "setuid kept");
    assert_eq!(mode("sub/sgid")? & 0o7777, 0o755, "setgid kept");
    // Docker keeps the sticky bit and plain permissions.
    assert_eq!(mode("sticky")? & 0o7777, 0o1777);
    assert_eq!(mode("plain")? & 0o7777, 0o640);
    assert_eq!(std::fs::read_to_string(out.join("plain"))?, "plain\n");
    assert_eq!(
        std::fs::metadata(out.join("suid"))?.len(),
        std::fs::metadata("/bin/busybox")?.len()
    );
    for special in ["blk", "sub/chr", "fifo"] {
        let p = out.join(special);
        let meta = std::fs::symlink_metadata(&p);
        assert!(
            meta.is_err(),
            "{special} was recreated on the host: {:?}",
            meta.map(|m| {
                let t = m.file_type();
                (t.is_block_device(), t.is_char_device(), t.is_fifo())
            })
        );
        assert!(
            stderr.contains(special),
            "the CLI does not say it skipped {special}: {stderr}"
        );
    }
    // A tar to stdout is the container's archive as it is (Docker's `-`).
    let (ok, _, _) = output(&daemon, &["cp", "planter:/x", "-"])?;
    assert!(ok);
    daemon.berth_ok(&["rm", "-f", "planter"])?;
    Ok(())
}

fn untouched(src: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(src)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["orig"], "the read-only bind source was written");
    assert_eq!(std::fs::read_to_string(src.join("orig"))?, "original\n");
    Ok(())
}

/// `-v SRC:/data:ro`: `cp` into `/data` must fail and leave SRC as it was,
/// whether the container runs (the kernel's mount flags hold) or is
/// stopped (berthd writes to SRC itself and must check the flag). The
/// same for a `--read-only` root file system.
#[test]
fn cp_into_a_read_only_mount_fails_running_or_stopped() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let host = tempfile::tempdir()?;
    let src = host.path().join("src");
    std::fs::create_dir(&src)?;
    std::fs::write(src.join("orig"), "original\n")?;
    let payload = host.path().join("payload");
    std::fs::write(&payload, "planted\n")?;
    let orig_payload = host.path().join("orig");
    std::fs::write(&orig_payload, "overwritten\n")?;
    let payload = payload.to_string_lossy().into_owned();
    let orig_payload = orig_payload.to_string_lossy().into_owned();
    let bind = format!("{}:/data:ro", src.display());

    // Stopped: the command ran and ended.
    daemon.berth_ok(&[
        "run",
        "--name",
        "ro-stopped",
        "--network",
        "none",
        "-v",
        &bind,
        BUSYBOX,
        "true",
    ])?;
    for (from, to) in [
        (payload.as_str(), "ro-stopped:/data/"),
        (payload.as_str(), "ro-stopped:/data/new"),
        (orig_payload.as_str(), "ro-stopped:/data/"),
        (orig_payload.as_str(), "ro-stopped:/data/orig"),
    ] {
        let (ok, _, err) = output(&daemon, &["cp", from, to])?;
        assert!(
            !ok,
            "cp {from} {to} into a stopped container's :ro bind succeeded"
        );
        assert!(err.contains("read-only"), "cp {from} {to}: {err}");
        untouched(&src)?;
    }

    // Running: through /proc/PID/root the mount is read-only.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "ro-running",
        "--network",
        "none",
        "-v",
        &bind,
        BUSYBOX,
        "sleep",
        "1000",
    ])?;
    for to in ["ro-running:/data/", "ro-running:/data/orig"] {
        let (ok, _, err) = output(&daemon, &["cp", &orig_payload, to])?;
        assert!(!ok, "cp into a running container's :ro bind succeeded");
        assert!(err.contains("read-only"), "{err}");
        untouched(&src)?;
    }

    // --read-only: the root file system refuses too, stopped or running.
    daemon.berth_ok(&[
        "run",
        "--name",
        "ro-root",
        "--read-only",
        "--network",
        "none",
        BUSYBOX,
        "true",
    ])?;
    let (ok, _, err) = output(&daemon, &["cp", &payload, "ro-root:/tmp/"])?;
    assert!(!ok, "cp into a stopped --read-only container succeeded");
    assert!(err.contains("read-only"), "{err}");
    let (ok, out, _) = output(&daemon, &["cp", "ro-root:/tmp/payload", "-"])?;
    assert!(!ok, "the payload reached the read-only root: {out}");

    // A writable bind of a stopped container still takes files.
    let rw = host.path().join("rw");
    std::fs::create_dir(&rw)?;
    daemon.berth_ok(&[
        "run",
        "--name",
        "rw-stopped",
        "--network",
        "none",
        "-v",
        &format!("{}:/data", rw.display()),
        BUSYBOX,
        "true",
    ])?;
    daemon.berth_ok(&["cp", &payload, "rw-stopped:/data/"])?;
    assert_eq!(std::fs::read_to_string(rw.join("payload"))?, "planted\n");

    daemon.berth_ok(&[
        "rm",
        "-f",
        "ro-stopped",
        "ro-running",
        "ro-root",
        "rw-stopped",
    ])?;
    Ok(())
}
