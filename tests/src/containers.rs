//! Helpers for container tests: a busybox base image made with `berth
//! import`, and checks that nothing of a container is left on the host.

use std::path::Path;

use crate::Berthd;

/// The name the busybox base image is imported under.
pub const BUSYBOX: &str = "e2e/busybox:1";

/// Import a busybox-static root file system into `daemon` as [`BUSYBOX`]:
/// `/bin/busybox` with every applet linked, `/etc/passwd` with root and
/// nobody, `/etc/group`, `/tmp`.
pub fn import_busybox(daemon: &Berthd) -> anyhow::Result<()> {
    import_busybox_as(daemon, BUSYBOX, &[])
}

/// [`import_busybox`] under another name, with more `--change`s (such as
/// `HEALTHCHECK CMD …`).
pub fn import_busybox_as(daemon: &Berthd, name: &str, changes: &[&str]) -> anyhow::Result<()> {
    import_busybox_with(daemon, name, changes, |_| Ok(()))
}

/// [`import_busybox_as`] with `extra` run on the root file system before it
/// is packed: an image made to attack the host (hostile symlinks and such).
pub fn import_busybox_with(
    daemon: &Berthd,
    name: &str,
    changes: &[&str],
    extra: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("rootfs");
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(|e| {
        anyhow::anyhow!("copying /bin/busybox (install busybox-static: scripts/deps.sh): {e}")
    })?;
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    extra(&root)?;
    let tarball = dir.path().join("rootfs.tar.gz");
    // File capabilities (`security.capability`) go into the layer as
    // `SCHILY.xattr` records, as in images with `ping`.
    let status = std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=security.capability"])
        .arg("-C")
        .arg(&root)
        .arg("-czf")
        .arg(&tarball)
        .arg(".")
        .status()?;
    anyhow::ensure!(status.success(), "tar of the busybox rootfs failed");
    let tarball = tarball.to_string_lossy().into_owned();
    let mut args = vec!["import", "-c", r#"CMD ["/bin/sh"]"#];
    for c in changes {
        args.extend_from_slice(&["-c", c]);
    }
    args.extend_from_slice(&[&tarball, name]);
    daemon.berth_ok(&args)?;
    Ok(())
}

/// Mount points under `dir` in this process's mount table.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// cgroup directories named after container `id` in any hierarchy.
pub fn cgroups_of(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for r in roots.flatten() {
        let p = r.path().join("berth").join(id);
        if p.exists() {
            found.push(p.display().to_string());
        }
    }
    found
}

/// Processes whose command line mentions `needle` (e.g. a container id).
pub fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// `berth inspect NAME` as JSON.
pub fn inspect(daemon: &Berthd, name: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&daemon.berth_ok(&["inspect", name])?)?)
}

/// The `state` of a container's status (`running`, `restarting`, `exited`, `created`).
pub fn state_of(daemon: &Berthd, name: &str) -> anyhow::Result<String> {
    Ok(inspect(daemon, name)?["status"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string())
}

/// `berth logs ARGS… NAME`: (stdout, stderr).
pub fn logs(daemon: &Berthd, args: &[&str]) -> anyhow::Result<(String, String)> {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    let out = daemon.berth(&all)?;
    anyhow::ensure!(
        out.status.success(),
        "berth {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The pid in a file of the container directory (`pid`, `shim.pid`).
pub fn pid_file(daemon: &Berthd, name: &str, file: &str) -> anyhow::Result<i32> {
    let dir = inspect(daemon, name)?["dir"]
        .as_str()
        .map(std::path::PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("inspect {name} has no dir"))?;
    Ok(std::fs::read_to_string(dir.join(file))?.trim().parse()?)
}
