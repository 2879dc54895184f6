//! A busybox root file system and a way to run a command in it.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_runtime::{Container, ImageDefaults, RunOptions, Stdio, build_spec};

pub struct Rootfs {
    pub dir: tempfile::TempDir,
}

impl Rootfs {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
}

/// /bin/busybox with its applets as symlinks, and passwd/group files.
pub fn busybox_rootfs() -> Rootfs {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    for d in ["bin", "etc", "tmp", "home/app", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let out = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:app\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/data.txt"), "not a program\n").unwrap();
    Rootfs { dir }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (std::fs::File::from(r), w)
}

/// Run `args` (through `sh -c` when one string) with `opts`; stdout and
/// stderr are collected. The exit code is what `docker run` gives.
pub fn run_with(root: &Rootfs, args: &[&str], mut opts: RunOptions) -> Output {
    opts.cmd = Some(args.iter().map(|s| s.to_string()).collect());
    let spec = build_spec(
        "0123456789abcdef",
        &root.path(),
        &ImageDefaults::default(),
        &opts,
    )
    .unwrap();
    run_spec(&spec)
}

pub fn run_spec(spec: &oci_spec::runtime::Spec) -> Output {
    let rootfs = spec
        .root()
        .as_ref()
        .unwrap()
        .path()
        .to_string_lossy()
        .into_owned();
    let before = mounts_under(&rootfs);
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let stdio = Stdio {
        stdin: None,
        stdout: Some(out_w),
        stderr: Some(err_w),
    };
    let mut stderr = String::new();
    let code = match Container::create("test", spec, stdio) {
        Err(e) => {
            stderr = format!("create: {e}\n");
            e.exit_code()
        }
        Ok(mut c) => match c.start() {
            Err(e) => {
                stderr = format!("start: {e}\n");
                e.exit_code()
            }
            Ok(()) => c.wait().unwrap().code(),
        },
    };
    let mut stdout = String::new();
    out_r.read_to_string(&mut stdout).unwrap();
    // Everything was mounted in the container's own mount namespace.
    let after = mounts_under(&rootfs);
    assert_eq!(after, before, "mounts leaked onto the host");
    let mut rest = String::new();
    err_r.read_to_string(&mut rest).unwrap();
    stderr.push_str(&rest);
    Output {
        code,
        stdout,
        stderr,
    }
}

pub fn sh(root: &Rootfs, script: &str) -> Output {
    run_with(root, &["sh", "-c", script], RunOptions::default())
}

pub fn sh_with(root: &Rootfs, script: &str, opts: RunOptions) -> Output {
    run_with(root, &["sh", "-c", script], opts)
}

fn mounts_under(prefix: &str) -> Vec<String> {
    host_mounts()
        .into_iter()
        .filter(|m| m.starts_with(prefix))
        .collect()
}

/// Mount points of this (the host's) mount namespace.
pub fn host_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
        .collect()
}

pub fn created(root: &Rootfs, args: &[&str]) -> Container {
    let opts = RunOptions {
        cmd: Some(args.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let spec = build_spec("c", &root.path(), &ImageDefaults::default(), &opts).unwrap();
    Container::create("c", &spec, Stdio::default()).unwrap()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
