//! The spec from image defaults and options, and its compiled plan —
//! everything the kernel will be asked to do, checked without root.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use super::*;
use crate::plan::{Plan, Step};

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    dir
}

fn image() -> ImageDefaults {
    ImageDefaults {
        env: vec![
            "PATH=/opt/bin:/bin".into(),
            "A=image".into(),
            "B=image".into(),
        ],
        entrypoint: Some(vec!["/entry".into()]),
        cmd: Some(vec!["default-arg".into()]),
        working_dir: "/srv".into(),
        user: "app".into(),
    }
}

fn process(spec: &Spec) -> &Process {
    spec.process().as_ref().unwrap()
}

#[test]
fn command_follows_docker_override_rules() {
    let root = rootfs();
    let args = |opts: RunOptions| {
        process(&build_spec("id", root.path(), &image(), &opts).unwrap())
            .args()
            .clone()
            .unwrap()
    };
    assert_eq!(args(RunOptions::default()), ["/entry", "default-arg"]);
    assert_eq!(
        args(RunOptions {
            cmd: Some(vec!["x".into()]),
            ..Default::default()
        }),
        ["/entry", "x"]
    );
    // --entrypoint drops the image's Cmd.
    assert_eq!(
        args(RunOptions {
            entrypoint: Some(vec!["/sh".into()]),
            ..Default::default()
        }),
        ["/sh"]
    );
    let none = ImageDefaults::default();
    assert!(matches!(
        build_spec("id", root.path(), &none, &RunOptions::default()),
        Err(RuntimeError::NoCommand)
    ));
}

#[test]
fn environment_precedence_user_and_cwd() {
    let root = rootfs();
    let opts = RunOptions {
        env: vec![
            "B=flag".into(),
            "A".into(),
            "A=flag".into(),
            "HOSTNAME".into(),
        ],
        env_file_lines: vec!["# c".into(), "".into(), "A=file".into(), "B=file".into()],
        ..Default::default()
    };
    let spec = build_spec("0123456789abcdef", root.path(), &image(), &opts).unwrap();
    let p = process(&spec);
    let env = p.env().clone().unwrap();
    for want in ["PATH=/opt/bin:/bin", "A=flag", "B=flag", "HOME=/home/app"] {
        assert!(env.contains(&want.to_string()), "{want} in {env:?}");
    }
    assert_eq!(env.iter().filter(|e| e.starts_with("B=")).count(), 1);
    assert!(
        !env.iter().any(|e| e.starts_with("HOSTNAME")),
        "a bare name removes: {env:?}"
    );
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
}

#[test]
fn a_tty_is_a_terminal_with_a_term_the_user_can_override() {
    let root = rootfs();
    let spec_with = |opts: RunOptions| build_spec("id", root.path(), &image(), &opts).unwrap();
    let plain = spec_with(RunOptions::default());
    assert_ne!(process(&plain).terminal(), Some(true));
    let env = process(&plain).env().clone().unwrap();
    assert!(!env.iter().any(|e| e.starts_with("TERM=")), "{env:?}");

    let tty = spec_with(RunOptions {
        tty: true,
        ..Default::default()
    });
    assert_eq!(process(&tty).terminal(), Some(true));
    assert!(Plan::from_spec(&tty).unwrap().terminal);
    let env = process(&tty).env().clone().unwrap();
    assert!(env.contains(&"TERM=xterm".to_string()), "{env:?}");

    let own = spec_with(RunOptions {
        tty: true,
        env: vec!["TERM=vt100".into()],
        ..Default::default()
    });
    let env = process(&own).env().clone().unwrap();
    assert_eq!(
        env.iter()
            .filter(|e| e.starts_with("TERM="))
            .collect::<Vec<_>>(),
        ["TERM=vt100"]
    );
}

#[test]
fn capability_sets() {
    let root = rootfs();
    let eff = |opts: RunOptions| {
        let spec = build_spec("id", root.path(), &image(), &opts).unwrap();
        crate::caps::mask(
            process(&spec)
                .capabilities()
                .as_ref()
                .unwrap()
                .effective()
                .as_ref(),
        )
        .unwrap()
    };
    assert_eq!(eff(RunOptions::default()), 0xa80425fb);
    assert_eq!(
        eff(RunOptions {
            cap_drop: vec!["ALL".into()],
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        eff(RunOptions {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["kill".into()],
            ..Default::default()
        }),
        1 << 5
    );
    let add_all = RunOptions {
        cap_add: vec!["ALL".into()],
        cap_drop: vec!["KILL".into()],
        ..Default::default()
    };
    assert_eq!(eff(add_all) & (1 << 5 | 1 << 21), 1 << 21);
    assert_eq!(
        eff(RunOptions {
            cap_add: vec!["NET_ADMIN".into()],
            ..Default::default()
        }),
        0xa80425fb | 1 << 12
    );
    let bad = RunOptions {
        cap_add: vec!["FLY".into()],
        ..Default::default()
    };
    assert!(matches!(
        build_spec("id", root.path(), &image(), &bad),
        Err(RuntimeError::BadCapability { .. })
    ));
}

#[test]
fn privileged_and_unconfined() {
    let root = rootfs();
    let spec = build_spec("id", root.path(), &image(), &RunOptions::default()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_some());
    let masked = linux.masked_paths().as_ref().unwrap();
    for p in [
        "/proc/kcore",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        assert!(masked.contains(&p.to_string()), "{p} not in {masked:?}");
    }
    let spec = build_spec(
        "id",
        root.path(),
        &image(),
        &RunOptions {
            privileged: true,
            ..Default::default()
        },
    )
    .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(
        linux.seccomp().is_none()
            && linux.masked_paths().is_none()
            && linux.readonly_paths().is_none()
    );
    let unconfined = RunOptions {
        seccomp_unconfined: true,
        ..Default::default()
    };
    let spec = build_spec("id", root.path(), &image(), &unconfined).unwrap();
    assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
}

#[test]
fn plan_orders_mounts_devices_masks() {
    let root = rootfs();
    let spec = build_spec("id", root.path(), &image(), &RunOptions::default()).unwrap();
    let plan = Plan::from_spec(&spec).unwrap();
    assert_eq!(
        plan.clone_flags & libc::CLONE_NEWCGROUP as libc::c_long,
        0,
        "cgroupns comes after start"
    );
    assert!(plan.cgroup_ns);
    let kinds: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::Mount { .. } => "mount",
            Step::Mknod { .. } => "mknod",
            Step::Symlink { .. } => "symlink",
            Step::Mask { .. } => "mask",
            Step::ReadOnly { .. } => "ro",
        })
        .collect();
    // /proc, /dev, then /dev's nodes and links before /dev/pts.
    assert_eq!(kinds[..3], ["mount", "mount", "mknod"]);
    let first_mask = kinds.iter().position(|k| *k == "mask").unwrap();
    assert!(
        kinds[first_mask..]
            .iter()
            .all(|k| *k == "mask" || *k == "ro")
    );
    assert_eq!(plan.labels.len(), plan.steps.len());
    // PATH lookup uses the container's PATH.
    let cands: Vec<String> = plan
        .candidates
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    assert_eq!(cands, ["/entry"]);
    assert_eq!(plan.effective, 0xa80425fb);
    assert!(!plan.seccomp.is_empty());
    assert!(
        root.path().join("srv").is_dir(),
        "a missing working directory is created"
    );
}

#[test]
fn plan_keeps_image_symlinks_inside_the_rootfs() {
    let root = rootfs();
    // An image whose /proc points at the host's /etc must not get the
    // host's /etc mounted over.
    std::os::unix::fs::symlink("/etc", root.path().join("proc")).unwrap();
    let opts = RunOptions {
        cmd: Some(vec!["sh".into()]),
        entrypoint: Some(vec![]),
        ..Default::default()
    };
    let spec = build_spec("id", root.path(), &image(), &opts).unwrap();
    let plan = Plan::from_spec(&spec).unwrap();
    let Step::Mount { target, .. } = &plan.steps[0] else {
        panic!("first step is /proc")
    };
    // The child opens "proc" from the root's descriptor: the link is
    // followed inside the root, where the parent made its target.
    assert_eq!(target.to_string_lossy(), "proc");
    assert!(root.path().join("etc").is_dir());
    let cands: Vec<String> = plan
        .candidates
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    assert_eq!(cands, ["/opt/bin/sh", "/bin/sh"]);
}

#[test]
fn privileged_makes_the_hosts_device_nodes_and_refuses_odd_ones() {
    let root = rootfs();
    let opts = RunOptions {
        privileged: true,
        ..RunOptions::default()
    };
    let mut spec = build_spec("id", root.path(), &image(), &opts).unwrap();
    let plan = Plan::from_spec(&spec).unwrap();
    let nodes: Vec<(String, libc::mode_t)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Mknod {
                dir, name, mode, ..
            } => {
                assert_eq!(dir.to_bytes(), b"dev");
                Some((name.to_string_lossy().into_owned(), *mode & libc::S_IFMT))
            }
            _ => None,
        })
        .collect();
    // This machine's disk and kvm come in, with their kinds.
    for (host, kind) in [("vda", libc::S_IFBLK), ("kvm", libc::S_IFCHR)] {
        if std::path::Path::new("/dev").join(host).exists() {
            let want = host.to_string();
            assert!(nodes.contains(&(want, kind)), "{host} missing: {nodes:?}");
        }
    }
    assert!(nodes.len() > 12, "{nodes:?}");

    let not_in_dev = oci_spec::runtime::LinuxDeviceBuilder::default()
        .path("/dev/net/tun")
        .typ(oci_spec::runtime::LinuxDeviceType::C)
        .major(10)
        .minor(200)
        .build()
        .unwrap();
    let mut linux = spec.linux().clone().unwrap();
    linux.set_devices(Some(vec![not_in_dev]));
    spec.set_linux(Some(linux));
    let Err(err) = Plan::from_spec(&spec) else {
        panic!("a device under /dev/net was accepted");
    };
    assert!(err.to_string().contains("/dev/net/tun"), "{err}");
}

#[test]
fn plan_refuses_a_link_chain_past_the_kernel_limit() {
    // /l0 -> /l1 -> ... -> /l40 -> a host directory: 41 links. Resolution
    // by string gave up after 40 and left the kernel to follow the last
    // one on the host, where the parent then made directories as root.
    let host = tempfile::tempdir().unwrap();
    let root = rootfs();
    for i in 0..40 {
        std::os::unix::fs::symlink(format!("/l{}", i + 1), root.path().join(format!("l{i}")))
            .unwrap();
    }
    std::os::unix::fs::symlink(host.path(), root.path().join("l40")).unwrap();
    let loops = |r: Result<Plan, RuntimeError>| {
        let Err(e) = r else {
            panic!("a chain of 41 links was accepted")
        };
        let text = e.to_string();
        assert!(text.contains("too many levels of symbolic links"), "{text}");
    };
    let workdir = RunOptions {
        workdir: Some("/l0/made-by-workdir".into()),
        ..Default::default()
    };
    let spec = build_spec("id", root.path(), &image(), &workdir).unwrap();
    loops(Plan::from_spec(&spec));
    for mount in [
        ExtraMount::Tmpfs {
            destination: "/l0/made-by-tmpfs".into(),
            options: vec![],
        },
        ExtraMount::Bind {
            source: host.path().to_path_buf(),
            destination: "/l0/made-by-bind".into(),
            read_only: false,
        },
    ] {
        let opts = RunOptions {
            mounts: vec![mount],
            ..Default::default()
        };
        let spec = build_spec("id", root.path(), &image(), &opts).unwrap();
        loops(Plan::from_spec(&spec));
    }
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "nothing made on the host"
    );
}
