#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! `berth top` and `berth cp` on real containers: the container's
//! processes (and only those), files and directories both ways on running
//! and stopped containers, and hostile archives or symlinks that must not
//! reach the host.

use std::io::Write;
use std::process::Stdio;

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

#[test]
fn top_lists_the_containers_processes() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "tp",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 1001 & exec sleep 1002",
    ])?;
    daemon.berth_ok(&["exec", "-d", "-u", "nobody", "tp", "sleep", "1003"])?;
    // The container's shell forks its sleep on its own time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut out = daemon.berth_ok(&["top", "tp"])?;
    // (An exec'd process shows as berth-shim for the instant between
    // joining the cgroup and its execve: wait for the commands.)
    while !(out.contains("sleep 1001") && out.contains("sleep 1003"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
        out = daemon.berth_ok(&["top", "tp"])?;
    }
    let lines: Vec<&str> = out.lines().collect();
    let titles: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{out}"
    );
    let mut cmds: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().skip(7).collect::<Vec<_>>().join(" "))
        .collect();
    // Rows are in pid order; which sleep forked first is a race.
    assert_eq!(cmds[0], "sleep 1002", "{out}");
    cmds.sort();
    assert_eq!(cmds, ["sleep 1001", "sleep 1002", "sleep 1003"], "{out}");
    let nobody = lines.iter().find(|l| l.ends_with("sleep 1003")).unwrap();
    assert!(
        nobody.starts_with("nobody") || nobody.starts_with("65534"),
        "{nobody}"
    );
    // Host pids: each is a real process whose parent chain is the container's.
    let init_pid: u32 = lines[1].split_whitespace().nth(1).unwrap().parse()?;
    let child = lines.iter().find(|l| l.ends_with("sleep 1001")).unwrap();
    assert_eq!(
        child.split_whitespace().nth(2).unwrap(),
        init_pid.to_string(),
        "{out}"
    );
    assert!(std::path::Path::new(&format!("/proc/{init_pid}")).exists());

    daemon.berth_ok(&["stop", "-t", "0", "tp"])?;
    let o = daemon.berth(&["top", "tp"])?;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not running"));
    daemon.berth_ok(&["rm", "tp"])?;
    Ok(())
}

fn berth_with_stdin(daemon: &Berthd, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = daemon
        .berth_command(args)
        .unwrap()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// A tar entry with a raw name (tar::Builder refuses `..`, as it should).
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn end(mut t: Vec<u8>) -> Vec<u8> {
    t.extend_from_slice(&[0u8; 1024]);
    t
}

#[test]
fn cp_both_ways_and_refuses_escapes() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let vol = tempfile::tempdir()?;
    let vol_arg = format!("{}:/vol", vol.path().display());
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "cp",
        "--network",
        "none",
        "-v",
        &vol_arg,
        BUSYBOX,
        "sh",
        "-c",
        "mkdir -p /data/sub; echo a > /data/a; echo b > /data/sub/b; ln -s /etc /data/etc; \
         ln -s / /data/root; echo v > /vol/inside; exec sleep 300",
    ])?;
    // The container's shell makes its files after `run -d` returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !daemon
        .berth(&["exec", "cp", "test", "-e", "/vol/inside"])?
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never made its files"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let local = tempfile::tempdir()?;
    let l = |p: &str| local.path().join(p);

    // Container → here: a directory into a directory, a file under a new name.
    daemon.berth_ok(&["cp", "cp:/data", &l("").to_string_lossy()])?;
    assert_eq!(std::fs::read_to_string(l("data/a"))?, "a\n");
    assert_eq!(std::fs::read_to_string(l("data/sub/b"))?, "b\n");
    assert_eq!(
        std::fs::read_link(l("data/etc"))?,
        std::path::Path::new("/etc")
    );
    daemon.berth_ok(&["cp", "cp:/data/a", &l("renamed").to_string_lossy()])?;
    assert_eq!(std::fs::read_to_string(l("renamed"))?, "a\n");
    // Through a container symlink to /etc: the container's passwd, not ours.
    daemon.berth_ok(&["cp", "cp:/data/etc/passwd", &l("passwd").to_string_lossy()])?;
    assert_eq!(
        std::fs::read_to_string(l("passwd"))?,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
    );
    // A volume is seen as the container sees it.
    daemon.berth_ok(&["cp", "cp:/vol/inside", &l("inside").to_string_lossy()])?;
    assert_eq!(std::fs::read_to_string(l("inside"))?, "v\n");

    // Here → container: a file into a directory, a directory under a new name.
    std::fs::write(l("up.txt"), "up\n")?;
    std::fs::create_dir_all(l("tree/deep"))?;
    std::fs::write(l("tree/deep/x"), "x\n")?;
    daemon.berth_ok(&["cp", &l("up.txt").to_string_lossy(), "cp:/tmp"])?;
    daemon.berth_ok(&["cp", &l("tree").to_string_lossy(), "cp:/tmp/copied"])?;
    let out = daemon.berth_ok(&["exec", "cp", "cat", "/tmp/up.txt", "/tmp/copied/deep/x"])?;
    assert_eq!(out, "up\nx\n");
    // Through the container's symlink to / : lands in the container's /tmp.
    let marker = format!("berth-cp-{}", std::process::id());
    std::fs::write(l(&marker), "m\n")?;
    daemon.berth_ok(&["cp", &l(&marker).to_string_lossy(), "cp:/data/root/tmp/"])?;
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "written on the host"
    );
    daemon.berth_ok(&["exec", "cp", "test", "-e", &format!("/tmp/{marker}")])?;
    let o = daemon.berth(&[
        "cp",
        &l("up.txt").to_string_lossy(),
        &l("elsewhere").to_string_lossy(),
    ])?;
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("CONTAINER:PATH"),
        "{o:?}"
    );
    let o = daemon.berth(&["cp", "cp:/no-such-file", &l("x").to_string_lossy()])?;
    assert!(!o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no such file or directory in container cp"),
        "{o:?}"
    );
    let o = daemon.berth(&["cp", &l("up.txt").to_string_lossy(), "cp:/no/such/dir/x"])?;
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no such file or directory"),
        "{o:?}"
    );

    // Hostile archives: `..` and a planted symlink. Nothing is written outside.
    let escape = format!("berth-escape-{}", std::process::id());
    let mut t = Vec::new();
    raw_entry(
        &mut t,
        &format!("../../../../../../../../tmp/{escape}"),
        tar::EntryType::Regular,
        "",
        b"pwned\n",
    );
    let o = berth_with_stdin(&daemon, &["cp", "-", "cp:/tmp"], &end(t));
    assert!(!o.status.success(), "a ../ entry was accepted");
    assert!(String::from_utf8_lossy(&o.stderr).contains(".."), "{o:?}");
    let mut t = Vec::new();
    raw_entry(&mut t, "link", tar::EntryType::Symlink, "/tmp", b"");
    raw_entry(
        &mut t,
        &format!("link/{escape}"),
        tar::EntryType::Regular,
        "",
        b"pwned\n",
    );
    let o = berth_with_stdin(&daemon, &["cp", "-", "cp:/tmp"], &end(t));
    assert!(
        !o.status.success(),
        "an entry through a symlink was accepted"
    );
    assert!(
        !std::path::Path::new("/tmp").join(&escape).exists(),
        "written on the host"
    );
    let found = daemon.berth(&[
        "exec",
        "cp",
        "sh",
        "-c",
        &format!("find / -name {escape} 2>/dev/null"),
    ])?;
    assert_eq!(
        String::from_utf8_lossy(&found.stdout),
        "",
        "written in the container"
    );

    // A stopped container: its rootfs and volumes are still reachable.
    daemon.berth_ok(&["stop", "-t", "0", "cp"])?;
    daemon.berth_ok(&["cp", &l("up.txt").to_string_lossy(), "cp:/tmp/after-stop"])?;
    daemon.berth_ok(&["cp", "cp:/tmp/after-stop", &l("back").to_string_lossy()])?;
    assert_eq!(std::fs::read_to_string(l("back"))?, "up\n");
    daemon.berth_ok(&["cp", "cp:/vol/inside", &l("inside2").to_string_lossy()])?;
    assert_eq!(std::fs::read_to_string(l("inside2"))?, "v\n");
    daemon.berth_ok(&["rm", "cp"])?;
    Ok(())
}

/// docker cp's CVE-2018-15664: a running container swaps a directory for a
/// symlink to a host path while `cp` copies it out. Every copy must hold
/// the container's own file or nothing, never the host's.
#[test]
fn cp_out_of_a_container_swapping_a_dir_for_a_symlink_never_reads_the_host() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let host = tempfile::tempdir()?;
    std::fs::write(host.path().join("secret"), "HOST-SECRET\n")?;
    let script = format!(
        "mkdir -p /x/d; echo container > /x/d/secret; \
         while :; do mv /x/d /x/real; ln -s {host} /x/d; rm /x/d; mv /x/real /x/d; done",
        host = host.path().display()
    );
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "race",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        &script,
    ])?;
    // The container's shell makes /x after `run -d` returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !daemon
        .berth(&["exec", "race", "test", "-e", "/x"])?
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never made /x"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (mut saw_container, mut saw_symlink) = (0, 0);
    for _ in 0..150 {
        let out = daemon.berth(&["cp", "race:/x", "-"])?;
        assert!(
            out.status.success(),
            "cp failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut archive = tar::Archive::new(&out.stdout[..]);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().into_owned();
            let mut data = String::new();
            if entry.header().entry_type() == tar::EntryType::Symlink {
                saw_symlink += 1;
                continue;
            }
            std::io::Read::read_to_string(&mut entry, &mut data)?;
            assert!(
                !data.contains("HOST-SECRET"),
                "{path} in the archive came from the host"
            );
            if data == "container\n" {
                saw_container += 1;
            }
        }
    }
    // The swap really raced the copies: both shapes were archived.
    assert!(saw_container > 0, "never copied the container's file");
    assert!(saw_symlink > 0, "never caught the directory as a symlink");
    daemon.berth_ok(&["rm", "-f", "race"])?;
    Ok(())
}
