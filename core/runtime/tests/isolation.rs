#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
//! Real containers, as root: output, exit codes, namespaces, mounts.

mod common;

use berth_runtime::RunOptions;
use common::*;

#[test]
fn echo_and_exit_codes() {
    let root = busybox_rootfs();
    let before = host_mounts();
    let out = run_with(&root, &["echo", "hi"], RunOptions::default());
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hi\n"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(sh(&root, "exit 3").code, 3);
    assert_eq!(host_mounts(), before, "no mount leaked onto the host");
}

#[test]
fn pid_one_hostname_and_no_host_processes() {
    let root = busybox_rootfs();
    let out = sh(&root, "echo $$; hostname; ls /proc | grep -c '^[0-9]'");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1", "PID 1 inside");
    assert_eq!(
        lines[1], "0123456789ab",
        "hostname defaults to the id's first 12"
    );
    // sh, ls and grep at most: nothing of the host.
    let procs: u32 = lines[2].parse().unwrap();
    assert!(procs <= 3, "saw {procs} processes: {}", out.stdout);
    let opts = RunOptions {
        hostname: Some("web".into()),
        ..Default::default()
    };
    assert_eq!(sh_with(&root, "hostname", opts).stdout, "web\n");
}

#[test]
fn own_mount_table() {
    let root = busybox_rootfs();
    let out = sh(&root, "cat /proc/self/mountinfo");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let points: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap())
        .collect();
    assert_eq!(points[0], "/", "{}", out.stdout);
    for want in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
    ] {
        assert!(points.contains(&want), "{want} missing: {points:?}");
    }
    // Nothing of the host's mount table (like /work or the host's /tmp).
    assert!(!points.iter().any(|p| p.starts_with("/work")), "{points:?}");
    let sys = out
        .stdout
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/sys"))
        .unwrap();
    assert!(sys.split(' ').nth(5).unwrap().starts_with("ro"), "{sys}");
}

#[test]
fn devices_and_masked_paths() {
    let root = busybox_rootfs();
    let out = sh(
        &root,
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c \
         && test -c /dev/full && test -c /dev/tty && test -L /dev/ptmx && test -c /dev/pts/ptmx \
         && test -d /dev/shm && test -d /dev/mqueue && echo devices-ok",
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "4\n4\ndevices-ok\n"),
        "stderr: {}",
        out.stderr
    );

    // /proc/kcore is masked where the kernel has it (this one may not);
    // /proc/timer_list is masked too and is non-empty on the host.
    assert!(
        !std::fs::read_to_string("/proc/timer_list")
            .unwrap()
            .is_empty()
    );
    let out = sh(
        &root,
        "[ ! -e /proc/kcore ] || wc -c < /proc/kcore; wc -c < /proc/timer_list; ls /sys/firmware | wc -l",
    );
    assert!(
        out.stdout.lines().count() >= 2,
        "{} {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.lines().all(|l| l.trim() == "0"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    let mountinfo = sh(&root, "cat /proc/self/mountinfo").stdout;
    let opts_of = |point: &str| {
        mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(point))
            .map(|l| l.split(' ').nth(5).unwrap().to_string())
            .unwrap_or_else(|| panic!("{point} not mounted: {mountinfo}"))
    };
    assert!(
        opts_of("/proc/timer_list").starts_with("rw"),
        "bind of /dev/null"
    );
    for ro in [
        "/proc/sys",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/sys/firmware",
    ] {
        assert!(opts_of(ro).starts_with("ro"), "{ro}: {}", opts_of(ro));
    }
}

#[test]
fn missing_and_non_executable_commands() {
    let root = busybox_rootfs();
    let out = run_with(&root, &["no-such-binary"], RunOptions::default());
    assert_eq!(out.code, 127);
    let out = run_with(&root, &["/etc/data.txt"], RunOptions::default());
    assert_eq!(out.code, 126);
    let out = run_with(&root, &["/etc"], RunOptions::default());
    assert_eq!(out.code, 126);
}

#[test]
fn killed_by_signal_is_128_plus() {
    let root = busybox_rootfs();
    let mut c = created(&root, &["sleep", "100"]);
    assert!(c.pid() > 1);
    assert!(c.net_ns_path().exists());
    c.start().unwrap();
    c.kill(nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap().code(), 137);
}

#[test]
fn create_then_start_separately() {
    let root = busybox_rootfs();
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut c = created(&root, &["true"]);
    // Before start the process exists in its own network namespace.
    let net = std::fs::read_link(c.net_ns_path()).unwrap();
    assert_ne!(net, host_net);
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().code(), 0);
    assert!(c.start().is_err(), "start twice");
}

#[test]
fn dropped_handle_kills_its_process() {
    let root = busybox_rootfs();
    let c = created(&root, &["sleep", "100"]);
    let pid = c.pid();
    drop(c);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn a_created_container_holds_no_other_containers_pipes() {
    let root = busybox_rootfs();
    let mut a = created(&root, &["true"]);
    // b is cloned while a's pipes are open in this process; it must not
    // keep them, or a's start would wait for b's exec.
    let b = created(&root, &["true"]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        a.start().unwrap();
        tx.send(a.wait().unwrap().code()).unwrap();
    });
    let code = rx.recv_timeout(std::time::Duration::from_secs(10));
    drop(b);
    assert_eq!(code, Ok(0));
}

#[test]
fn runs_on_an_overlay_rootfs_and_writes_to_the_upper_dir() {
    let lower = busybox_rootfs();
    let dir = tempfile::tempdir().unwrap();
    let (upper, work, merged) = (
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.path().display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .unwrap();
    let opts = RunOptions {
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo written > /tmp/f && cat /tmp/f".into(),
        ]),
        ..Default::default()
    };
    let spec = berth_runtime::build_spec("ovl", &merged, &Default::default(), &opts).unwrap();
    let out = run_spec(&spec);
    nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "written\n"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("tmp/f")).unwrap(),
        "written\n"
    );
    assert!(
        !lower.path().join("tmp/f").exists(),
        "the lower layer is untouched"
    );
}

#[test]
fn a_spec_without_a_network_namespace_shares_the_hosts() {
    let root = busybox_rootfs();
    let opts = RunOptions {
        cmd: Some(vec!["sleep".into(), "100".into()]),
        ..Default::default()
    };
    let mut spec =
        berth_runtime::build_spec("h", &root.path(), &Default::default(), &opts).unwrap();
    let mut linux = spec.linux().clone().unwrap();
    let namespaces = linux.namespaces().clone().unwrap();
    linux.set_namespaces(Some(
        namespaces
            .into_iter()
            .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network)
            .collect(),
    ));
    spec.set_linux(Some(linux));
    let c = berth_runtime::Container::create("h", &spec, Default::default()).unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(std::fs::read_link(c.net_ns_path()).unwrap(), host);
    let uts = std::fs::read_link(format!("/proc/{}/ns/uts", c.pid())).unwrap();
    assert_ne!(
        uts,
        std::fs::read_link("/proc/self/ns/uts").unwrap(),
        "the other namespaces stay"
    );
}
