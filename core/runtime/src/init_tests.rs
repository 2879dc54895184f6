//! The child's sequence of kernel calls, recorded by a fake kernel.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::cell::RefCell;
use std::ffi::CStr;
use std::os::fd::RawFd;

use super::*;
use crate::kernel::{Errno, Kernel};
use crate::spec::{ImageDefaults, RunOptions, build_spec};

#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<String>>,
    /// Fail the first call whose record starts with this, with this errno.
    fail: Option<(&'static str, Errno)>,
    /// What each execve returns, in order (ENOENT after the list).
    exec: Vec<Errno>,
}

impl Recorder {
    fn rec(&self, call: String) -> Result<(), Errno> {
        let fail = matches!(self.fail, Some((p, _)) if call.starts_with(p));
        self.calls.borrow_mut().push(call);
        match self.fail {
            Some((_, e)) if fail => Err(e),
            _ => Ok(()),
        }
    }

    fn names(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(|c| c.split(' ').next().unwrap().to_string())
            .collect()
    }
}

fn s(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

impl Kernel for Recorder {
    fn umask(&self, mode: libc::mode_t) {
        let _ = self.rec(format!("umask {mode:o}"));
    }
    fn dup_to(&self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        self.rec(format!("dup {fd} {target}"))
    }
    fn close_other_fds(&self, keep: &[RawFd]) {
        let _ = self.rec(format!("close_other_fds {keep:?}"));
    }
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        _data: Option<&CStr>,
    ) -> Result<(), Errno> {
        let src = source.map(s).unwrap_or_default();
        let typ = fstype.map(s).unwrap_or_default();
        self.rec(format!("mount {} {src} {typ} {flags:#x}", s(target)))
    }
    fn umount_detach(&self, target: &CStr) -> Result<(), Errno> {
        self.rec(format!("umount {}", s(target)))
    }
    fn mkdir(&self, path: &CStr) -> Result<(), Errno> {
        self.rec(format!("mkdir {}", s(path)))
    }
    fn create_file(&self, path: &CStr) -> Result<(), Errno> {
        self.rec(format!("create {}", s(path)))
    }
    fn mknod(&self, path: &CStr, _mode: libc::mode_t, major: u32, minor: u32) -> Result<(), Errno> {
        self.rec(format!("mknod {} {major}:{minor}", s(path)))
    }
    fn symlink(&self, target: &CStr, link: &CStr) -> Result<(), Errno> {
        self.rec(format!("symlink {} {}", s(target), s(link)))
    }
    fn is_dir(&self, path: &CStr) -> Result<bool, Errno> {
        self.rec(format!("is_dir {}", s(path)))?;
        Ok(s(path).ends_with("firmware") || s(path).ends_with("acpi"))
    }
    fn chdir(&self, path: &CStr) -> Result<(), Errno> {
        self.rec(format!("chdir {}", s(path)))
    }
    fn pivot_root_here(&self) -> Result<(), Errno> {
        self.rec("pivot_root".into())
    }
    fn sethostname(&self, name: &CStr) -> Result<(), Errno> {
        self.rec(format!("sethostname {}", s(name)))
    }
    fn unshare(&self, flags: libc::c_int) -> Result<(), Errno> {
        self.rec(format!("unshare {flags:#x}"))
    }
    fn setrlimit(&self, resource: libc::c_int, limit: &libc::rlimit) -> Result<(), Errno> {
        self.rec(format!(
            "setrlimit {resource} {} {}",
            limit.rlim_cur, limit.rlim_max
        ))
    }
    fn prctl(&self, option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
        self.rec(format!("prctl {option} {arg}"))
    }
    fn seccomp(&self, program: &[seccompiler::sock_filter]) -> Result<(), Errno> {
        self.rec(format!("seccomp {}", program.len()))
    }
    fn setgroups(&self, groups: &[libc::gid_t]) -> Result<(), Errno> {
        self.rec(format!("setgroups {groups:?}"))
    }
    fn setresgid(&self, gid: libc::gid_t) -> Result<(), Errno> {
        self.rec(format!("setresgid {gid}"))
    }
    fn setresuid(&self, uid: libc::uid_t) -> Result<(), Errno> {
        self.rec(format!("setresuid {uid}"))
    }
    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
        self.rec(format!(
            "capset {effective:x} {permitted:x} {inheritable:x}"
        ))
    }
    fn raise_ambient(&self, cap: u8) -> Result<(), Errno> {
        self.rec(format!("ambient {cap}"))
    }
    fn reset_signals(&self) {
        let _ = self.rec("reset_signals".into());
    }
    fn open_pty(&self) -> Result<(RawFd, RawFd), Errno> {
        self.rec("open_pty".into())?;
        Ok((20, 21))
    }
    fn fchown(&self, fd: RawFd, uid: libc::uid_t) -> Result<(), Errno> {
        self.rec(format!("fchown {fd} {uid}"))
    }
    fn make_controlling_terminal(&self, fd: RawFd) -> Result<(), Errno> {
        self.rec(format!("ctty {fd}"))
    }
    fn send_fd(&self, sock: RawFd, fd: RawFd) -> Result<(), Errno> {
        self.rec(format!("send_fd {sock} {fd}"))
    }
    fn close(&self, fd: RawFd) {
        let _ = self.rec(format!("close {fd}"));
    }
    fn execve(
        &self,
        path: &CStr,
        _argv: &[*const libc::c_char],
        _envp: &[*const libc::c_char],
    ) -> Errno {
        let n = self
            .calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("execve"))
            .count();
        let _ = self.rec(format!("execve {}", s(path)));
        self.exec.get(n).copied().unwrap_or(libc::ENOENT)
    }
}

fn plan(opts: RunOptions) -> (tempfile::TempDir, Plan) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "app:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    let image = ImageDefaults {
        cmd: Some(vec!["prog".into()]),
        ..Default::default()
    };
    let spec = build_spec("0123456789abcdef", dir.path(), &image, &opts).unwrap();
    let plan = Plan::from_spec(&spec).unwrap();
    (dir, plan)
}

const FDS: ChildFds = ChildFds {
    stdio: [10, 11, 12],
    err_w: 13,
    start_r: 14,
    console: -1,
};

#[test]
fn setup_mounts_then_pivots_then_names_the_host() {
    let (dir, plan) = plan(RunOptions::default());
    let k = Recorder::default();
    setup(&k, &plan, &FDS).unwrap();
    let names = k.names();
    assert_eq!(
        names[..6],
        ["umask", "dup", "dup", "dup", "close_other_fds", "mount"]
    );
    let calls = k.calls.borrow();
    assert!(calls[5].starts_with("mount / "), "{}", calls[5]);
    let root = dir.path().to_string_lossy().into_owned();
    assert!(
        calls[6].starts_with(&format!("mount {root} {root}")),
        "{}",
        calls[6]
    );
    let pivot = names.iter().position(|n| n == "pivot_root").unwrap();
    assert_eq!(calls[pivot - 1], format!("chdir {root}"));
    assert_eq!(
        calls[pivot + 1..],
        ["umount .", "chdir /", "sethostname 0123456789ab"]
    );
    // Masked: /dev/null over files, read-only tmpfs over directories.
    assert!(calls.contains(&format!(
        "mount {root}/proc/kcore /dev/null  {:#x}",
        libc::MS_BIND
    )));
    assert!(calls.contains(&format!(
        "mount {root}/sys/firmware tmpfs tmpfs {:#x}",
        libc::MS_RDONLY
    )));
    assert!(calls.contains(&format!("mknod {root}/dev/null 1:3")));
}

#[test]
fn the_containers_own_root_mount_gets_setuid_and_devices_back_last() {
    // The host's mount is nosuid,nodev; the last mount before pivot_root
    // is a bind remount of the root with exactly the flags the container
    // gets: none of those two, read-only only when asked.
    for read_only in [false, true] {
        let (dir, plan) = plan(RunOptions {
            read_only,
            ..RunOptions::default()
        });
        let k = Recorder::default();
        setup(&k, &plan, &FDS).unwrap();
        let calls = k.calls.borrow();
        let root = dir.path().to_string_lossy().into_owned();
        let pivot = calls.iter().position(|c| c == "pivot_root").unwrap();
        let mut flags = libc::MS_BIND | libc::MS_REMOUNT;
        if read_only {
            flags |= libc::MS_RDONLY;
        }
        assert_eq!(
            calls[pivot - 2],
            format!("mount {root} {root}  {flags:#x}"),
            "read_only = {read_only}"
        );
    }
}

#[test]
fn a_terminal_is_made_in_the_container_after_pivot_root() {
    let (_dir, plan) = plan(RunOptions {
        tty: true,
        user: Some("app".into()),
        ..Default::default()
    });
    assert!(plan.terminal);
    let fds = ChildFds { console: 15, ..FDS };
    let k = Recorder::default();
    setup(&k, &plan, &fds).unwrap();
    let calls = k.calls.borrow();
    assert!(
        calls.contains(&"close_other_fds [13, 14, 15]".to_string()),
        "the console socket survives: {calls:?}"
    );
    let pty = calls.iter().position(|c| c == "open_pty").unwrap();
    let pivot = calls.iter().position(|c| c == "pivot_root").unwrap();
    assert!(pivot < pty, "/dev/ptmx must be the container's");
    assert_eq!(
        calls[pty..],
        [
            "open_pty",
            "fchown 21 1000",
            "ctty 21",
            "dup 21 0",
            "dup 21 1",
            "dup 21 2",
            "close 21",
            "send_fd 15 20",
            "close 20",
            "close 15",
        ]
    );
    // Without a terminal, none of it.
    let (_dir, plan) = self::plan(RunOptions::default());
    let k = Recorder::default();
    setup(&k, &plan, &FDS).unwrap();
    assert!(!k.names().contains(&"open_pty".to_string()));
}

#[test]
fn a_failed_terminal_is_reported_as_such() {
    let (_dir, plan) = plan(RunOptions {
        tty: true,
        ..Default::default()
    });
    let k = Recorder {
        fail: Some(("ctty", libc::EPERM)),
        ..Default::default()
    };
    let fds = ChildFds { console: 15, ..FDS };
    let f = setup(&k, &plan, &fds).unwrap_err();
    assert_eq!(
        (f.stage, f.errno, f.index),
        (Stage::Terminal, libc::EPERM, 2)
    );
    assert_eq!(f.stage.name(), "setting up the terminal");
    assert_eq!(Stage::from_u32(Stage::Terminal as u32), Stage::Terminal);
}

#[test]
fn a_failed_step_reports_its_index() {
    let (_dir, plan) = plan(RunOptions::default());
    let k = Recorder {
        fail: Some(("mknod", libc::EPERM)),
        ..Default::default()
    };
    let f = setup(&k, &plan, &FDS).unwrap_err();
    assert_eq!((f.stage, f.errno), (Stage::Step, libc::EPERM));
    assert_eq!(plan.labels[f.index as usize], " of /dev/null");
}

#[test]
fn finish_drops_privileges_in_order_then_execs() {
    let opts = RunOptions {
        user: Some("app".into()),
        no_new_privileges: true,
        ..Default::default()
    };
    let (_dir, plan) = plan(opts);
    let k = Recorder {
        exec: vec![libc::ENOENT, libc::EACCES],
        ..Default::default()
    };
    let f = finish(&k, &plan, &[], &[]);
    assert_eq!(
        (f.stage, f.errno),
        (Stage::Exec, libc::EACCES),
        "EACCES wins over ENOENT"
    );
    let names = k.names();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} in {names:?}"))
    };
    assert_eq!(
        names[0], "unshare",
        "the cgroup namespace comes first, after placement"
    );
    assert!(pos("chdir") < pos("seccomp"));
    assert!(
        pos("seccomp") < pos("setgroups"),
        "seccomp loads while CAP_SYS_ADMIN is held"
    );
    assert!(pos("setgroups") < pos("setresgid") && pos("setresgid") < pos("setresuid"));
    assert!(pos("setresuid") < pos("capset") && pos("capset") < pos("execve"));
    let calls = k.calls.borrow();
    assert!(calls.contains(&format!("prctl {} 1", libc::PR_SET_NO_NEW_PRIVS)));
    assert!(calls.contains(&"setresuid 1000".to_string()));
    assert!(calls.contains(&"capset a80425fb a80425fb 0".to_string()));
    // Bounding drops are the complement of Docker's set (CAP_SYS_ADMIN is 21).
    assert!(calls.contains(&format!("prctl {} 21", libc::PR_CAPBSET_DROP)));
    assert!(
        !calls.contains(&format!("prctl {} 0", libc::PR_CAPBSET_DROP)),
        "CAP_CHOWN kept"
    );
    let execs: Vec<&String> = calls.iter().filter(|c| c.starts_with("execve")).collect();
    assert_eq!(
        execs.len(),
        plan.candidates.len(),
        "every PATH entry is tried"
    );
}

#[test]
fn finish_stops_at_the_first_failure() {
    let (_dir, plan) = plan(RunOptions::default());
    let k = Recorder {
        fail: Some(("setresuid", libc::EPERM)),
        ..Default::default()
    };
    let f = finish(&k, &plan, &[], &[]);
    assert_eq!(f.stage, Stage::Setuid);
    assert!(!k.names().contains(&"execve".to_string()));
}
