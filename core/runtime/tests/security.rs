#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
//! Capabilities, seccomp, no_new_privs, users, env, workdir, read-only root.

mod common;

use berth_runtime::{RunOptions, Ulimit};
use common::*;

fn cap(root: &Rootfs, field: &str, opts: RunOptions) -> String {
    let opts_dbg = format!("{opts:?}");
    let out = sh_with(root, &format!("grep {field} /proc/self/status"), opts);
    assert_eq!(out.code, 0, "{field} with {opts_dbg}: {}", out.stderr);
    out.stdout.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn docker_default_capabilities() {
    let root = busybox_rootfs();
    assert_eq!(
        cap(&root, "CapEff", RunOptions::default()),
        "00000000a80425fb"
    );
    assert_eq!(
        cap(&root, "CapBnd", RunOptions::default()),
        "00000000a80425fb"
    );
    let drop = RunOptions {
        cap_drop: vec!["NET_RAW".into(), "CAP_CHOWN".into()],
        ..Default::default()
    };
    assert_eq!(
        cap(&root, "CapEff", drop),
        format!("{:016x}", 0xa80425fbu64 & !(1 << 13) & !1)
    );
    let add = RunOptions {
        cap_add: vec!["SYS_ADMIN".into()],
        ..Default::default()
    };
    assert_eq!(
        cap(&root, "CapEff", add),
        format!("{:016x}", 0xa80425fbu64 | (1 << 21))
    );
    let privileged = RunOptions {
        privileged: true,
        ..Default::default()
    };
    let all = cap(&root, "CapEff", privileged);
    // Every capability this (root) test process holds.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let host = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    assert_eq!(all, host);
}

/// Runs `script` and returns its output; fails the test if it fails.
fn ok(root: &Rootfs, script: &str, opts: RunOptions) -> String {
    let dbg = format!("{opts:?}");
    let out = sh_with(root, script, opts);
    assert_eq!(
        out.code, 0,
        "{script} with {dbg}: {}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Runs `script`, which must fail with EPERM (busybox's mount words it
/// "permission denied (are you root?)").
fn refused(root: &Rootfs, script: &str, opts: RunOptions) {
    let dbg = format!("{opts:?}");
    let out = sh_with(root, script, opts);
    assert_ne!(out.code, 0, "{script} worked with {dbg}");
    assert!(
        out.stderr.contains("Operation not permitted") || out.stderr.contains("are you root"),
        "{script} with {dbg}: {}",
        out.stderr
    );
}

#[test]
fn default_seccomp_profile_refuses_what_docker_refuses() {
    let root = busybox_rootfs();
    let status = ok(
        &root,
        "grep Seccomp: /proc/self/status",
        RunOptions::default(),
    );
    assert!(status.contains("Seccomp:\t2"), "filter mode: {status}");
    // Creating a user namespace needs no capability: only the profile
    // stops it (unshare needs CAP_SYS_ADMIN there, as in Docker).
    refused(&root, "unshare -U true", RunOptions::default());
    let unconfined = RunOptions {
        seccomp_unconfined: true,
        ..Default::default()
    };
    ok(&root, "unshare -U true", unconfined);
    // Refused by the profile and by the missing capability alike.
    refused(
        &root,
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
        RunOptions::default(),
    );
    refused(&root, "swapon /bin/busybox", RunOptions::default());
    refused(&root, "nsenter -t 1 -u true", RunOptions::default());
}

#[test]
fn ordinary_programs_run_under_the_default_profile() {
    let root = busybox_rootfs();
    // A shell, a fork, a pipe, files, time, sleep, a socket and connect,
    // signals, the personality calls setarch makes.
    let script = "ls / >/dev/null && (echo forked) | cat && date +%Y >/dev/null \
        && sleep 0.1 && echo x > /tmp/f && cat /tmp/f && rm /tmp/f \
        && linux32 true && linux64 true \
        && (wget -q -T 2 -O- http://127.0.0.1:9/ 2>&1; true) | grep -v 'not permitted' \
        && kill -0 $$ && echo done";
    let out = ok(&root, script, RunOptions::default());
    assert!(out.starts_with("forked\nx\n"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn cap_add_sys_admin_opens_mount_and_namespaces_as_in_docker() {
    let root = busybox_rootfs();
    let sys_admin = RunOptions {
        cap_add: vec!["SYS_ADMIN".into()],
        ..Default::default()
    };
    let out = ok(
        &root,
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && touch /tmp/m/x \
         && grep -c ' /tmp/m tmpfs' /proc/self/mounts && umount /tmp/m",
        sys_admin.clone(),
    );
    assert_eq!(out, "1\n");
    ok(&root, "unshare -u -U true", sys_admin.clone());
    // The capability opens what it gates, not what nothing opens.
    refused(&root, "swapon /bin/busybox", sys_admin);
}

#[test]
fn no_new_privileges_is_off_by_default() {
    let root = busybox_rootfs();
    assert_eq!(cap(&root, "NoNewPrivs", RunOptions::default()), "0");
    let nnp = RunOptions {
        no_new_privileges: true,
        ..Default::default()
    };
    assert_eq!(cap(&root, "NoNewPrivs", nnp), "1");
}

#[test]
fn users_and_groups() {
    let root = busybox_rootfs();
    let as_user = |u: &str| {
        let out = sh_with(
            &root,
            "id; echo $HOME",
            RunOptions {
                user: Some(u.into()),
                ..Default::default()
            },
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    assert_eq!(
        as_user("1000"),
        "uid=1000(app) gid=1000(app) groups=10(wheel),29(audio)\n/home/app\n"
    );
    assert_eq!(
        as_user("app:wheel"),
        "uid=1000(app) gid=10(wheel) groups=10(wheel)\n/home/app\n"
    );
    assert_eq!(as_user("4242:77"), "uid=4242 gid=77 groups=77\n/\n");
    assert_eq!(
        cap(
            &root,
            "CapEff",
            RunOptions {
                user: Some("app".into()),
                ..Default::default()
            }
        ),
        "0000000000000000"
    );
    let opts = RunOptions {
        user: Some("ghost".into()),
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    let err = berth_runtime::build_spec("x", &root.path(), &Default::default(), &opts).unwrap_err();
    assert_eq!(err.exit_code(), 125);
    assert!(
        err.to_string().contains("unable to find user ghost"),
        "{err}"
    );
}

#[test]
fn env_workdir_and_etc_files() {
    let root = busybox_rootfs();
    let etc = root.dir.path().join("etc-files");
    let opts = RunOptions {
        env: vec!["A=1".into(), "B=from-e".into()],
        env_file_lines: vec!["# comment".into(), "B=from-file".into(), "C=3".into()],
        workdir: Some("/work/dir".into()),
        hostname: Some("box".into()),
        etc_dir: Some(etc),
        extra_hosts: vec![("db".into(), "10.1.2.3".into())],
        ..Default::default()
    };
    let out = sh_with(
        &root,
        "echo $A $B $C $HOSTNAME; pwd; cat /etc/hostname; grep db /etc/hosts; grep -c nameserver /etc/resolv.conf",
        opts,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["1 from-e 3 box", "/work/dir", "box", "10.1.2.3\tdb"],
        "{}",
        out.stdout
    );
    assert_ne!(lines[4], "0");
    assert!(
        !root.path().join("etc/hostname").exists()
            || std::fs::read_to_string(root.path().join("etc/hostname"))
                .unwrap()
                .is_empty()
    );
}

#[test]
fn read_only_rootfs_and_ulimits() {
    let root = busybox_rootfs();
    let opts = RunOptions {
        read_only: true,
        ulimits: vec![Ulimit {
            name: "nofile".into(),
            soft: 123,
            hard: 456,
        }],
        ..Default::default()
    };
    let out = sh_with(
        &root,
        "touch /x 2>/dev/null || echo ro; touch /dev/shm/x && echo shm-rw; ulimit -n; ulimit -Hn",
        opts,
    );
    assert_eq!(out.stdout, "ro\nshm-rw\n123\n456\n", "{}", out.stderr);
    assert!(!root.path().join("x").exists());
}

#[test]
fn extra_mounts() {
    let root = busybox_rootfs();
    let src = root.dir.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "hello\n").unwrap();
    let opts = RunOptions {
        mounts: vec![
            berth_runtime::ExtraMount::Bind {
                source: src.clone(),
                destination: "/data".into(),
                read_only: true,
            },
            berth_runtime::ExtraMount::Tmpfs {
                destination: "/scratch".into(),
                options: vec![],
            },
        ],
        ..Default::default()
    };
    let out = sh_with(
        &root,
        "cat /data/f; touch /data/g 2>/dev/null || echo ro; touch /scratch/x && echo rw",
        opts,
    );
    assert_eq!(out.stdout, "hello\nro\nrw\n", "{}", out.stderr);
}
