//! The child's sequence of kernel calls, recorded by a fake kernel.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::cell::RefCell;
use std::ffi::CStr;
use std::os::fd::RawFd;

use super::*;
use crate::kernel::{Errno, Kernel, Source};
use crate::spec::{ImageDefaults, RunOptions, build_spec};

#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<String>>,
    /// Fail the first call whose record starts with this, with this errno.
    fail: Option<(&'static str, Errno)>,
    /// What each execve returns, in order (ENOENT after the list).
    exec: Vec<Errno>,
    /// A path inside the root that `open_in` does not find.
    missing: Option<&'static str>,
    /// What each descriptor handed out names: fd `FD0 + i` is `opened[i]`.
    opened: RefCell<Vec<String>>,
    /// What `fd_limit` answers.
    fd_limit: u64,
}

/// The first descriptor the fake hands out.
const FD0: RawFd = 100;

impl Recorder {
    fn rec(&self, call: String) -> Result<(), Errno> {
        let fail = matches!(self.fail, Some((p, _)) if call.starts_with(p));
        self.calls.borrow_mut().push(call);
        match self.fail {
            Some((_, e)) if fail => Err(e),
            _ => Ok(()),
        }
    }

    /// What `fd` names, as the calls show it.
    fn name_of(&self, fd: RawFd) -> String {
        let i = usize::try_from(fd - FD0).unwrap();
        self.opened.borrow()[i].clone()
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
    fn close_range(&self, first: u32, last: u32) -> Result<(), Errno> {
        self.rec(format!("close_range {first} {last}"))
    }
    fn fd_limit(&self) -> u64 {
        self.fd_limit
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
    fn open_dir(&self, path: &CStr) -> Result<RawFd, Errno> {
        self.rec(format!("open_dir {}", s(path)))?;
        let mut opened = self.opened.borrow_mut();
        opened.push(format!("<{}>", s(path)));
        Ok(FD0 + opened.len() as RawFd - 1)
    }
    fn open_in(&self, root: RawFd, path: &CStr, flags: libc::c_int) -> Result<RawFd, Errno> {
        let kind = if flags & libc::O_DIRECTORY != 0 {
            " dir"
        } else {
            ""
        };
        let root = self.name_of(root);
        self.rec(format!("open_in {root} {}{kind}", s(path)))?;
        if self.missing == Some(s(path).as_str()) {
            return Err(libc::ENOENT);
        }
        let mut opened = self.opened.borrow_mut();
        opened.push(s(path));
        Ok(FD0 + opened.len() as RawFd - 1)
    }
    fn mount_on(
        &self,
        source: Option<Source<'_>>,
        target: RawFd,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        _data: Option<&CStr>,
    ) -> Result<(), Errno> {
        let src = match source {
            None => String::new(),
            Some(Source::Path(p)) => s(p),
            Some(Source::Fd(fd)) => format!("@{}", self.name_of(fd)),
        };
        let typ = fstype.map(s).unwrap_or_default();
        let target = self.name_of(target);
        self.rec(format!("mount @{target} {src} {typ} {flags:#x}"))
    }
    fn mkdirat(&self, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        let dir = self.name_of(dir);
        self.rec(format!("mkdirat {dir} {}", s(name)))
    }
    fn create_at(&self, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        let dir = self.name_of(dir);
        self.rec(format!("create_at {dir} {}", s(name)))
    }
    fn mknodat(
        &self,
        dir: RawFd,
        name: &CStr,
        _mode: libc::mode_t,
        major: u32,
        minor: u32,
    ) -> Result<(), Errno> {
        let dir = self.name_of(dir);
        self.rec(format!("mknodat {dir} {} {major}:{minor}", s(name)))
    }
    fn symlinkat(&self, target: &CStr, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        let dir = self.name_of(dir);
        self.rec(format!("symlinkat {} {dir} {}", s(target), s(name)))
    }
    fn is_dir_fd(&self, fd: RawFd) -> Result<bool, Errno> {
        let path = self.name_of(fd);
        self.rec(format!("is_dir {path}"))?;
        Ok(["firmware", "acpi", "powercap"]
            .iter()
            .any(|d| path.ends_with(d)))
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
        names[..7],
        [
            "umask",
            "dup",
            "dup",
            "dup",
            "close_range",
            "close_range",
            "mount"
        ]
    );
    let calls = k.calls.borrow();
    assert_eq!(
        calls[4..6],
        ["close_range 3 12", "close_range 15 4294967295"],
        "everything but the error and start pipes"
    );
    assert!(calls[6].starts_with("mount / "), "{}", calls[6]);
    let root = dir.path().to_string_lossy().into_owned();
    assert!(
        calls[7].starts_with(&format!("mount {root} {root}")),
        "{}",
        calls[7]
    );
    let pivot = names.iter().position(|n| n == "pivot_root").unwrap();
    assert_eq!(calls[pivot - 1], format!("chdir {root}"));
    assert_eq!(
        calls[pivot + 1..],
        ["umount .", "chdir /", "sethostname 0123456789ab"]
    );
    // Every step opens its path inside the root, from the root's
    // descriptor, and mounts onto the descriptor.
    assert_eq!(calls[8], format!("open_dir {root}"));
    assert!(calls.contains(&format!("open_in <{root}> dev/pts")));
    assert!(calls.contains(&format!(
        "mount @dev/pts devpts devpts {:#x}",
        libc::MS_NOSUID | libc::MS_NOEXEC
    )));
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with(&format!("mount {root}/"))),
        "no step mounts onto a path joined to the root: {calls:?}"
    );
    // Masked: /dev/null over files, read-only tmpfs over directories.
    assert!(calls.contains(&format!(
        "mount @proc/kcore /dev/null  {:#x}",
        libc::MS_BIND
    )));
    assert!(calls.contains(&format!(
        "mount @sys/firmware tmpfs tmpfs {:#x}",
        libc::MS_RDONLY
    )));
    assert!(calls.contains(&"mknodat dev null 1:3".to_string()));
    assert!(calls.contains(&"symlinkat pts/ptmx dev ptmx".to_string()));
    // Read-only paths: bound onto themselves, then remounted.
    let ro = calls
        .iter()
        .position(|c| c.starts_with("mount @proc/sys @proc/sys"))
        .unwrap();
    assert!(
        calls[ro + 1..]
            .iter()
            .any(|c| c.starts_with("mount @proc/sys  "))
    );
}

#[test]
fn a_masked_path_this_kernel_lacks_is_skipped() {
    let powercap = "sys/devices/virtual/powercap";
    let (_dir, plan) = plan(RunOptions::default());
    let k = Recorder {
        missing: Some(powercap),
        ..Default::default()
    };
    setup(&k, &plan, &FDS).unwrap();
    let calls = k.calls.borrow();
    assert!(calls.iter().any(|c| c.ends_with(&format!(" {powercap}"))));
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with(&format!("mount @{powercap}")))
    );
    // Where the kernel has it (a directory): an empty read-only tmpfs over it.
    let k = Recorder::default();
    setup(&k, &plan, &FDS).unwrap();
    assert!(k.calls.borrow().contains(&format!(
        "mount @{powercap} tmpfs tmpfs {:#x}",
        libc::MS_RDONLY
    )));
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
        calls.contains(&"close_range 16 4294967295".to_string())
            && !calls.iter().any(|c| c.starts_with("close_range 15")),
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
        fail: Some(("mknodat", libc::EPERM)),
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

#[test]
fn without_close_range_fds_are_closed_one_by_one() {
    let (_dir, plan) = plan(RunOptions::default());
    let k = Recorder {
        fail: Some(("close_range", libc::ENOSYS)),
        fd_limit: 20,
        ..Default::default()
    };
    setup(&k, &plan, &FDS).unwrap();
    let calls = k.calls.borrow();
    // The steps close the descriptors they open inside the root later on.
    let first_mount = calls.iter().position(|c| c.starts_with("mount")).unwrap();
    let closed: Vec<&str> = calls[..first_mount]
        .iter()
        .filter_map(|c| c.strip_prefix("close "))
        .collect();
    // Every fd below the limit but the kept pipes (13, 14).
    let want: Vec<String> = (3..20)
        .filter(|fd| ![13, 14].contains(fd))
        .map(|fd| fd.to_string())
        .collect();
    assert_eq!(closed, want, "closed one by one, before anything else");
}

#[test]
fn without_close_range_an_fd_limit_too_high_to_walk_fails_the_start() {
    let (_dir, plan) = plan(RunOptions::default());
    let k = Recorder {
        fail: Some(("close_range", libc::ENOSYS)),
        fd_limit: 1 << 30,
        ..Default::default()
    };
    let f = setup(&k, &plan, &FDS).unwrap_err();
    assert_eq!((f.stage, f.errno), (Stage::CloseFds, libc::ENOSYS));
    assert_eq!(Stage::from_u32(Stage::CloseFds as u32), Stage::CloseFds);
    assert_eq!(f.stage.name(), "closing the file descriptors it inherited");
    assert!(!k.names().contains(&"mount".to_string()), "nothing after");
}
