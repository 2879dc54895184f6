//! Device nodes on the cgroup v2 path. Docker's default capability set
//! has CAP_MKNOD, so a container can make a node for any device; only the
//! cgroup's device rules stop it opening one. cgroup v2 has no `devices`
//! files: the rules are a BPF program attached to the container's cgroup,
//! and without one a container on a pure v2 host (Debian 12, Ubuntu 22.04,
//! Fedora) reads the host's disk.
//!
//! This host is hybrid (v1 controllers, a controller-less v2 mount), so
//! berthd runs with `BERTH_CGROUP_LAYOUT=v2`: containers are placed in the
//! v2 hierarchy alone, with no v1 `devices` cgroup of their own, exactly
//! the path a pure v2 host takes. Each test checks that this is so before
//! it attacks.

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, cgroups_of, import_busybox, inspect, pid_file};

/// A host block device with a secret on it: a loop device over a file of
/// this test's. (It stands in for the host's disk, which this machine keeps
/// closed even to root; what the kernel checks is the same.) Detached on
/// drop.
struct HostDisk {
    dev: String,
    major: u32,
    minor: u32,
    secret: String,
    _file: tempfile::NamedTempFile,
}

impl HostDisk {
    fn attach() -> anyhow::Result<Self> {
        use std::io::Write as _;
        use std::os::unix::fs::MetadataExt as _;
        let secret = format!("berth-host-secret-{}", std::process::id());
        let mut file = tempfile::NamedTempFile::new()?;
        let mut block = secret.clone().into_bytes();
        block.resize(64 * 1024, b'\n');
        file.write_all(&block)?;
        file.flush()?;
        let dev = berth_e2e::run_ok(
            std::process::Command::new("losetup")
                .args(["--find", "--show", "--read-only"])
                .arg(file.path()),
        )?
        .trim()
        .to_owned();
        let rdev = std::fs::metadata(&dev)?.rdev();
        let disk = HostDisk {
            major: dev_major(rdev),
            minor: dev_minor(rdev),
            dev,
            secret,
            _file: file,
        };
        // The host itself can read it, so a container that cannot is held
        // back by its cgroup, not by the device.
        let head = std::fs::read(&disk.dev)?;
        anyhow::ensure!(
            head.starts_with(disk.secret.as_bytes()),
            "{} does not read back its file",
            disk.dev
        );
        Ok(disk)
    }
}

impl Drop for HostDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["--detach", &self.dev])
            .status();
    }
}

/// glibc's `major()` and `minor()` of a `dev_t`.
fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32
}

fn dev_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32
}

/// Make a node for the host device and read its start; make one for the
/// host's /dev/kvm and open it; then write to /dev/null. Prints what was
/// read (the secret, if the read worked), `opened-kvm` and `null-ok` if
/// those worked, and the tools' errors.
fn probe(disk: &HostDisk) -> String {
    format!(
        "mknod /dev/hostdisk b {} {} && mknod /dev/probe-kvm c 10 232 && echo made-nodes; \
         head -c 64 /dev/hostdisk 2>&1; echo; \
         (exec 3</dev/probe-kvm) 2>&1 && echo opened-kvm; \
         echo x > /dev/null && echo null-ok",
        disk.major, disk.minor
    )
}

fn daemon_on_v2() -> anyhow::Result<Berthd> {
    anyhow::ensure!(
        std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
            || std::path::Path::new("/sys/fs/cgroup/cgroup.procs").exists(),
        "this test needs a cgroup2 mount (hybrid at /sys/fs/cgroup/unified, or pure v2)"
    );
    let daemon = Berthd::start_with_env(
        Berthd::CONFIG_AUTH_NONE,
        &[("BERTH_CGROUP_LAYOUT", "v2"), ("RUST_LOG", "info")],
    )?;
    import_busybox(&daemon)?;
    Ok(daemon)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The container's process is in a v2 cgroup of its own and in no v1
/// `devices` cgroup named for it: the v2 path, with nothing else to
/// enforce device rules.
fn assert_on_the_v2_path(daemon: &Berthd, name: &str) -> anyhow::Result<()> {
    let id = inspect(daemon, name)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pid = pid_file(daemon, name, "pid")?;
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let v2 = own.lines().find_map(|l| l.strip_prefix("0::"));
    assert!(
        v2.is_some_and(|p| p.ends_with(&format!("/berth/{id}"))),
        "not in a v2 cgroup of its own:\n{own}"
    );
    let devices = own.lines().find(|l| l.split(':').nth(1) == Some("devices"));
    assert!(
        devices.is_none_or(|l| !l.contains(&id)),
        "the container has a v1 devices cgroup, so this is not the v2 path:\n{own}"
    );
    Ok(())
}

#[test]
fn a_v2_container_cannot_read_a_host_block_device_through_a_node_it_makes() -> anyhow::Result<()> {
    let disk = HostDisk::attach()?;
    let daemon = daemon_on_v2()?;
    let probe = probe(&disk);

    // A long-running container: its cgroups show the path taken, and exec
    // must be held to the same rules.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "300",
    ])?;
    assert_on_the_v2_path(&daemon, "victim")?;
    let id = inspect(&daemon, "victim")?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let out = daemon.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        &probe,
    ])?;
    let ran = text(&out);
    assert!(out.status.success(), "run: {ran}");
    assert!(
        ran.contains("made-nodes"),
        "CAP_MKNOD is Docker's default: {ran}"
    );
    assert!(
        !ran.contains(&disk.secret),
        "a default container on cgroup v2 read the host's {}: {ran}",
        disk.dev
    );
    assert!(!ran.contains("opened-kvm"), "{ran}");
    assert_eq!(ran.matches("Operation not permitted").count(), 2, "{ran}");
    assert!(ran.contains("null-ok"), "/dev/null must stay usable: {ran}");

    let out = daemon.berth(&["exec", "victim", "sh", "-c", &probe])?;
    let exec = text(&out);
    assert!(
        !exec.contains(&disk.secret),
        "exec on cgroup v2 read the host's {}: {exec}",
        disk.dev
    );
    assert!(!exec.contains("opened-kvm"), "{exec}");
    assert_eq!(exec.matches("Operation not permitted").count(), 2, "{exec}");
    assert!(exec.contains("null-ok"), "{exec}");

    // --privileged allows every device, on v2 as on v1.
    let out = daemon.berth(&[
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        &probe,
    ])?;
    let privileged = text(&out);
    assert!(
        privileged.contains(&disk.secret)
            && privileged.contains("opened-kvm")
            && privileged.contains("null-ok"),
        "--privileged on cgroup v2: {privileged}"
    );

    // Removing the container removes its cgroup, program and all.
    daemon.berth_ok(&["rm", "-f", "victim"])?;
    assert_eq!(cgroups_of(&id), Vec::<String>::new());
    daemon.berth_ok(&["ps", "-a"])?;
    Ok(())
}
