//! Container creates that never finish, because berthd was killed in the
//! middle of one: after the next start-up nothing of such a create is
//! left (no mount, cgroup, directory, snapshot or record), or it is
//! finished and shows in `ps -a`, where `rm` removes it.
//!
//! The kill comes at a point the test holds open: during a pre-create
//! hook that spins until its (long) deadline, with the root file system
//! already mounted. The other half-done states a kill leaves (a record
//! whose files were never written, a monitor still waiting for its go)
//! are made the way the create makes them, then berthd is killed. So is
//! a create killed after it made the anonymous volumes of an image's
//! `VOLUME` paths but before it recorded the container: its record is
//! taken out of the (stopped) daemon's database, and start-up must remove
//! those volumes with the rest.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_e2e::Berthd;
use berth_e2e::containers::{
    BUSYBOX, cgroups_of, import_busybox, import_busybox_as, mounts_under, processes_with,
};
use berth_e2e::images::{dir_names, snapshot_ids};
use berth_plugin_artifacts as wasm;

/// Detaches whatever is still mounted under a daemon's root when a test
/// ends, so that a failing test leaks no mount.
struct DetachOnDrop(PathBuf);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        for m in mounts_under(&self.0).iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// A monitor this test started, killed when the test ends if it is still
/// there (on failure it may wait on its FIFO for ever).
struct Monitor(std::process::Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Nothing of container `id` anywhere, and `ps -a` is empty.
fn nothing_left(daemon: &Berthd, id: &str, snapshots_before: &std::collections::BTreeSet<String>) {
    assert_eq!(
        mounts_under(&daemon.root),
        Vec::<String>::new(),
        "mounts left"
    );
    assert_eq!(
        dir_names(&daemon.root.join("containers")),
        Default::default(),
        "container directories left"
    );
    assert_eq!(
        &snapshot_ids(&daemon.root),
        snapshots_before,
        "snapshots left"
    );
    assert_eq!(cgroups_of(id), Vec::<String>::new(), "cgroups left");
    assert_eq!(processes_with(id), Vec::<String>::new(), "processes left");
    let ps = daemon.berth_ok(&["ps", "-a", "-q"]).unwrap_or_default();
    assert_eq!(ps.trim(), "", "ps -a still lists containers");
}

/// The one directory under `ROOT/containers`, once there is one whose
/// root file system is mounted.
fn wait_for_mounted_create(root: &Path) -> anyhow::Result<PathBuf> {
    let containers = root.join("containers");
    let mut found = None;
    berth_e2e::net::wait_until(
        "a create to mount its root file system",
        Duration::from_secs(30),
        || {
            found = dir_names(&containers)
                .into_iter()
                .map(|n| containers.join(n))
                .find(|d| !mounts_under(&d.join("rootfs")).is_empty());
            Ok(found.is_some())
        },
    )?;
    found.ok_or_else(|| anyhow::anyhow!("no create"))
}

#[test]
fn berthd_killed_during_a_create_leaves_nothing_behind() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let _detach = DetachOnDrop(daemon.root.clone());
    import_busybox(&daemon)?;
    let before = snapshot_ids(&daemon.root);
    // A hook that holds the create for a minute, after the mount.
    daemon.berth_ok(&[
        "plugin",
        "install",
        wasm::FIXTURE_SPIN,
        "--name",
        "spin",
        "--timeout-ms",
        "60000",
    ])?;
    let mut run = daemon
        .berth_command(&[
            "run",
            "-d",
            "--network",
            "none",
            "-e",
            "A=B",
            BUSYBOX,
            "sleep",
            "600",
        ])?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let dir = wait_for_mounted_create(&daemon.root)?;
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    daemon.kill9();
    let _ = run.wait();
    assert!(
        !mounts_under(&dir).is_empty(),
        "the kill came after the mount"
    );

    daemon.restart()?;
    daemon.berth_ok(&["plugin", "rm", "spin"])?;
    nothing_left(&daemon, &id, &before);
    // The daemon serves, and the image runs.
    daemon.berth_ok(&["run", "--rm", "--network", "none", BUSYBOX, "true"])?;
    Ok(())
}

#[test]
fn a_record_whose_files_were_never_written_is_removed_at_start_up() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let _detach = DetachOnDrop(daemon.root.clone());
    import_busybox(&daemon)?;
    let before = snapshot_ids(&daemon.root);
    let id = daemon.berth_ok(&["create", "--network", "none", BUSYBOX, "true"])?;
    let id = id.trim().to_string();
    let dir = daemon.root.join("containers").join(&id);
    daemon.kill9();
    // Killed between the record and its files: the record, the mount and
    // the snapshot are there, `config.json` and `shim.json` are not.
    for f in ["config.json", "shim.json"] {
        std::fs::remove_file(dir.join(f))?;
    }
    assert!(!mounts_under(&dir).is_empty());

    daemon.restart()?;
    nothing_left(&daemon, &id, &before);
    Ok(())
}

#[test]
fn a_monitor_left_waiting_for_its_go_is_told_there_is_none() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let _detach = DetachOnDrop(daemon.root.clone());
    import_busybox(&daemon)?;
    let before = snapshot_ids(&daemon.root);
    let id = daemon.berth_ok(&["create", "--network", "none", BUSYBOX, "sleep", "600"])?;
    let id = id.trim().to_string();
    let dir = daemon.root.join("containers").join(&id);
    daemon.kill9();
    // Killed after the monitor was started, before it was told to go (the
    // network is wired in between): the FIFO, and the shim waiting on it
    // with the container created.
    berth_e2e::run_ok(
        Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(dir.join("start")),
    )?;
    let shim = berth_e2e::bins::bin_dir()?.join("berth-shim");
    let mut monitor = Monitor(
        Command::new(shim)
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    berth_e2e::net::wait_until(
        "the container to be created",
        Duration::from_secs(20),
        || Ok(dir.join("pid").exists()),
    )?;

    daemon.restart()?;
    berth_e2e::net::wait_until("the container to be over", Duration::from_secs(20), || {
        Ok(berth_e2e::containers::state_of(&daemon, &id)? == "exited")
    })?;
    let _ = monitor.0.wait();
    let ps = daemon.berth_ok(&["ps", "-a"])?;
    assert!(ps.contains(&id[..12]), "{ps}");
    let inspect = berth_e2e::containers::inspect(&daemon, &id)?;
    assert_eq!(inspect["status"]["code"], 125, "{inspect}");
    daemon.berth_ok(&["rm", &id])?;
    nothing_left(&daemon, &id, &before);
    Ok(())
}

#[test]
fn anonymous_volumes_of_a_create_killed_before_its_record_are_removed() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let _detach = DetachOnDrop(daemon.root.clone());
    import_busybox_as(&daemon, "e2e/vol:v1", &["VOLUME /data", "VOLUME /tmp"])?;
    let before = snapshot_ids(&daemon.root);
    let id = daemon.berth_ok(&["create", "--network", "none", "e2e/vol:v1", "true"])?;
    let id = id.trim().to_string();
    let volumes = daemon.root.join("volumes");
    let made = dir_names(&volumes);
    assert_eq!(made.len(), 2, "the create made two volumes");
    daemon.kill9();
    // Killed after the volumes were made, before the record was written:
    // the directory, the mount, the snapshot and the volumes are there,
    // the record is not, nor its files (written after it).
    let state = berth_state::State::open(daemon.root.join("state"))?;
    assert!(state.json_tree("containers")?.remove(&id)?, "no record");
    state.flush()?;
    drop(state);
    let dir = daemon.root.join("containers").join(&id);
    for f in ["config.json", "shim.json"] {
        std::fs::remove_file(dir.join(f))?;
    }
    assert!(!mounts_under(&dir).is_empty());

    daemon.restart()?;
    nothing_left(&daemon, &id, &before);
    assert_eq!(
        dir_names(&volumes),
        Default::default(),
        "volume directories left"
    );
    let listed = daemon.berth_ok(&["volume", "ls"])?;
    for v in &made {
        assert!(
            !listed.contains(v.as_str()),
            "volume {v} still listed:\n{listed}"
        );
    }
    // A volume berth was asked for is not the create's to remove.
    daemon.berth_ok(&["volume", "create", "kept"])?;
    daemon.restart()?;
    assert!(daemon.berth_ok(&["volume", "ls"])?.contains("kept"));
    Ok(())
}
