#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
//! `berth run -it`, `run -i`, `attach` and `start -a` through berthd and
//! real pseudo-terminals: the test opens a pty, runs `berth` on its slave
//! side as a user's terminal would (its controlling terminal, so SIGWINCH
//! reaches it), types into the master side and reads what comes back.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox, inspect, logs, state_of};
use berth_e2e::net::wait_until;

/// A pseudo-terminal whose output a thread collects.
struct Terminal {
    master: std::fs::File,
    slave: OwnedFd,
    output: Arc<Mutex<Vec<u8>>>,
    /// Where the next `expect` starts looking.
    seen: usize,
    stop: Arc<AtomicBool>,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    fn open(rows: u16, cols: u16) -> Terminal {
        let (mut master, mut slave) = (-1, -1);
        let ws = winsize(rows, cols);
        // SAFETY: openpty writes two fds into our locals and reads `ws`.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned these fds just now; they are ours.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let output = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = std::fs::File::from(master.try_clone().unwrap());
        let (out, halt) = (output.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut buf = [0u8; 4096];
            while !halt.load(Ordering::Relaxed) {
                let mut pfd = libc::pollfd {
                    fd: reader.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: polls one fd we own for 100 ms.
                if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                    continue;
                }
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => out.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        Terminal {
            master: std::fs::File::from(master),
            slave,
            output,
            seen: 0,
            stop,
        }
    }

    /// `berth ARGS…` on this terminal: its stdin, stdout, stderr and
    /// controlling terminal.
    fn spawn(&mut self, daemon: &Berthd, args: &[&str]) -> Child {
        self.seen = self.output.lock().unwrap().len();
        let mut cmd = daemon.berth_command(args).unwrap();
        cmd.stdin(Stdio::from(self.slave.try_clone().unwrap()))
            .stdout(Stdio::from(self.slave.try_clone().unwrap()))
            .stderr(Stdio::from(self.slave.try_clone().unwrap()));
        // SAFETY: setsid and ioctl are async-signal-safe and touch no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn type_in(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// The output after what `expect` matched so far; then all of it counts as seen.
    fn take_new(&mut self) -> String {
        let out = self.output.lock().unwrap();
        let new = String::from_utf8_lossy(&out[self.seen.min(out.len())..]).into_owned();
        self.seen = out.len();
        new
    }

    /// Wait for `needle` in the output after what earlier calls matched.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let out = self.output.lock().unwrap();
                let rest = String::from_utf8_lossy(&out[self.seen.min(out.len())..]).into_owned();
                if let Some(i) = rest.find(needle) {
                    self.seen += i + needle.len();
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on the terminal; it shows:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What a window manager does: the kernel sends SIGWINCH to the
    /// terminal's foreground process group (berth).
    fn resize(&self, rows: u16, cols: u16) {
        let ws = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads a winsize we own.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0);
    }

    /// The slave side's modes (what berth must leave as it found them).
    fn modes(&self) -> (u32, u32, u32, u32) {
        // SAFETY: an all-zero termios is a valid value to be overwritten.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills the termios we own.
        assert_eq!(
            unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut t) },
            0
        );
        (t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The exit code of `child`, which must end within 30 s.
fn exit_code(child: &mut Child, term: &Terminal) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth did not exit; the terminal shows:\n{}", term.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Type `stty size` until the container's terminal has the size (a
/// resize travels berth → berthd → shim after the SIGWINCH).
fn until_size(term: &mut Terminal, rows: u16, cols: u16) {
    let want = format!("\n{rows} {cols}\r\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut recent = String::new();
    loop {
        term.type_in("stty size\n");
        std::thread::sleep(Duration::from_millis(200));
        recent.push_str(&term.take_new());
        if recent.contains(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the container's terminal never became {rows}x{cols}:\n{}",
            term.text()
        );
    }
}

#[test]
fn run_it_gives_the_container_a_terminal_of_its_own() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let mut term = Terminal::open(37, 101);
    let before = term.modes();
    let mut berth = term.spawn(
        &daemon,
        &[
            "run",
            "-it",
            "--rm",
            "--name",
            "interactive",
            "--network",
            "none",
            BUSYBOX,
            "sh",
        ],
    );
    term.expect("/ # ");
    // pid 1 has the container's /dev/pts/0 as stdin/out/err and as its
    // controlling terminal (tty_nr 136:0), in a session of its own.
    term.type_in(
        "tty; stty size; echo term=$TERM; read -r p c s pp g sess t rest < /proc/1/stat; echo sess=$sess tty=$t; ls -l /proc/1/fd/0 /proc/1/fd/2 | grep -c pts/0; exec 3</dev/tty && echo ctty-ok\n",
    );
    term.expect("\n/dev/pts/0\r\n37 101\r\nterm=xterm\r\nsess=1 tty=34816\r\n2\r\nctty-ok\r\n");

    // A new size of our window reaches the container's terminal.
    term.resize(40, 120);
    until_size(&mut term, 40, 120);

    // What is typed reaches the container.
    term.type_in("read x; echo got-$x\n");
    term.expect("read x; echo got-$x\r\n");
    term.type_in("hello\n");
    term.expect("got-hello\r\n");

    // The container's exit code is ours; our terminal is as it was.
    assert_ne!(term.modes(), before, "berth put the terminal in raw mode");
    term.type_in("exit 3\n");
    assert_eq!(exit_code(&mut berth, &term), 3);
    assert_eq!(term.modes(), before, "terminal modes not restored");
    // --rm: gone by the time berth returns.
    let ps = daemon.berth_ok(&["ps", "-a"])?;
    assert!(!ps.contains("interactive"), "{ps}");
    Ok(())
}

#[test]
fn detach_keys_then_attach_and_the_terminal_in_the_log() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let mut term = Terminal::open(24, 80);
    let before = term.modes();
    let mut berth = term.spawn(
        &daemon,
        &[
            "run",
            "-it",
            "--name",
            "keeper",
            "--network",
            "none",
            BUSYBOX,
            "sh",
        ],
    );
    term.expect("/ # ");
    term.type_in("echo first-$((20+1))\n");
    term.expect("first-21\r\n");
    // ctrl-p ctrl-q: berth leaves, the container runs on.
    term.type_in("\x10\x11");
    assert_eq!(exit_code(&mut berth, &term), 0);
    assert_eq!(term.modes(), before);
    assert_eq!(state_of(&daemon, "keeper")?, "running");
    let v = inspect(&daemon, "keeper")?;
    assert_eq!(
        (v["tty"].as_bool(), v["open_stdin"].as_bool()),
        (Some(true), Some(true))
    );

    // Attach again: same shell, same terminal.
    let mut again = Terminal::open(24, 80);
    let mut attach = again.spawn(&daemon, &["attach", "keeper"]);
    // Attach says nothing until the shell does; retry until the relay is up.
    wait_until(
        "the attached shell to answer",
        Duration::from_secs(30),
        || {
            again.type_in("echo back-$((40+2))\n");
            std::thread::sleep(Duration::from_millis(200));
            Ok(again.text().contains("back-42\r\n"))
        },
    )
    .unwrap();
    again.type_in("exit 5\n");
    assert_eq!(exit_code(&mut attach, &again), 5);
    assert_eq!(daemon.berth_ok(&["wait", "keeper"])?.trim(), "5");

    // With a terminal the output is the container's stdout in the log.
    let (out, err) = logs(&daemon, &["keeper"])?;
    assert!(out.contains("first-21"), "{out}");
    assert!(out.contains("back-42"), "{out}");
    assert!(!err.contains("back-42"), "{err}");
    daemon.berth_ok(&["rm", "keeper"])?;
    Ok(())
}

#[test]
fn attach_works_after_the_daemon_is_killed() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    daemon.berth_ok(&[
        "run",
        "-dit",
        "--name",
        "survivor",
        "--network",
        "none",
        BUSYBOX,
        "sh",
    ])?;
    assert_eq!(state_of(&daemon, "survivor")?, "running");
    daemon.kill9();
    daemon.restart()?;
    assert_eq!(state_of(&daemon, "survivor")?, "running");

    let mut term = Terminal::open(30, 90);
    let before = term.modes();
    let mut attach = term.spawn(&daemon, &["attach", "survivor"]);
    wait_until(
        "the attached shell to answer",
        Duration::from_secs(30),
        || {
            term.type_in("echo alive-$((6*7))\n");
            std::thread::sleep(Duration::from_millis(200));
            Ok(term.text().contains("alive-42\r\n"))
        },
    )
    .unwrap();
    // attach sends our size at once, and again on SIGWINCH.
    until_size(&mut term, 30, 90);
    term.resize(33, 77);
    until_size(&mut term, 33, 77);
    term.type_in("exit 4\n");
    assert_eq!(exit_code(&mut attach, &term), 4);
    assert_eq!(term.modes(), before);
    assert_eq!(daemon.berth_ok(&["wait", "survivor"])?.trim(), "4");
    Ok(())
}

#[test]
fn run_i_pipes_stdin_and_start_a_attaches() -> anyhow::Result<()> {
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let net = ["--network", "none"];

    // -i without -t: our stdin is a pipe into the container; its end closes it.
    let out = daemon.berth_stdin_ok(
        &["run", "-i", "--rm", net[0], net[1], BUSYBOX, "cat"],
        "hello\n",
    )?;
    assert_eq!(out, "hello\n");
    let out = daemon.berth_stdin_ok(
        &[
            "run",
            "-i",
            "--rm",
            net[0],
            net[1],
            BUSYBOX,
            "sh",
            "-c",
            "read a; read b; echo \"$b $a\"; echo to-err >&2; [ -t 0 ] || echo not-a-tty",
        ],
        "one\ntwo\n",
    )?;
    assert_eq!(out, "two one\nnot-a-tty\n");
    // A large input arrives whole and in order.
    let big: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    let out = daemon.berth_stdin_ok(
        &["run", "-i", "--rm", net[0], net[1], BUSYBOX, "wc", "-l"],
        &big,
    )?;
    assert_eq!(out.trim(), "20000");
    // The exit code is the container's.
    let o = daemon
        .berth_command(&[
            "run",
            "-i",
            "--rm",
            net[0],
            net[1],
            BUSYBOX,
            "sh",
            "-c",
            "cat >/dev/null; exit 6",
        ])?
        .stdin(Stdio::null())
        .output()?;
    assert_eq!(o.status.code(), Some(6), "{o:?}");
    // Without -i the container's stdin is /dev/null.
    let out = daemon.berth_stdin_ok(
        &[
            "run",
            "--rm",
            net[0],
            net[1],
            BUSYBOX,
            "sh",
            "-c",
            "cat; echo end",
        ],
        "not for the container\n",
    )?;
    assert_eq!(out, "end\n");

    // -t without -i from a pipe: a terminal, output only.
    let out = daemon.berth_ok(&["run", "-t", "--rm", net[0], net[1], BUSYBOX, "tty"])?;
    assert_eq!(out, "/dev/pts/0\r\n");

    // create -i, then start -a -i: attached before it starts, nothing missed.
    daemon.berth_ok(&[
        "create",
        "-i",
        "--name",
        "later",
        net[0],
        net[1],
        BUSYBOX,
        "sh",
        "-c",
        "echo early; read l; echo start-$l; exit 2",
    ])?;
    let v = inspect(&daemon, "later")?;
    assert_eq!(
        (v["tty"].as_bool(), v["open_stdin"].as_bool()),
        (Some(false), Some(true))
    );
    let mut child = daemon
        .berth_command(&["start", "-a", "-i", "later"])?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(b"x\n")?;
    let o = child.wait_with_output()?;
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "early\nstart-x\n");

    // A restarted run gets a terminal of its own, and the log has them all.
    daemon.berth_ok(&[
        "run",
        "-d",
        "-t",
        "--name",
        "again",
        "--restart",
        "on-failure:2",
        net[0],
        net[1],
        BUSYBOX,
        "sh",
        "-c",
        "tty; exit 1",
    ])?;
    assert_eq!(daemon.berth_ok(&["wait", "again"])?.trim(), "1");
    let (out, _) = logs(&daemon, &["again"])?;
    assert_eq!(out.matches("/dev/pts/0").count(), 3, "{out}");
    Ok(())
}

/// One raw request on the control socket: (status, body).
fn control(daemon: &Berthd, method: &str, target: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: berthd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn attach_refuses_what_it_cannot_attach_to() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;
    let berth = |args: &[&str]| {
        let o = daemon.berth(args).unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "300",
    ])?;
    daemon.berth_ok(&[
        "run",
        "-dit",
        "--name",
        "stopped",
        "--network",
        "none",
        BUSYBOX,
        "sh",
    ])?;
    daemon.berth_ok(&["stop", "-t", "0", "stopped"])?;

    let (code, err) = berth(&["attach", "stopped"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("container stopped is not running"), "{err}");
    let (code, err) = berth(&["attach", "plain"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("created without -i or -t"), "{err}");
    let (code, err) = berth(&["attach", "nothing-here"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no container"), "{err}");
    let (code, err) = berth(&["start", "-a", "plain", "stopped"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("one container"), "{err}");

    // The API says what is wrong with a resize.
    let (status, body) = control(&daemon, "POST", "/v1/containers/plain/resize?h=24&w=80");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("created without -t"), "{body}");
    let (status, body) = control(&daemon, "POST", "/v1/containers/stopped/resize?h=tall&w=80");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("?h=24&w=80"), "{body}");
    let (status, body) = control(&daemon, "POST", "/v1/containers/stopped/resize?h=24&w=80");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("is not running"), "{body}");
    let (status, body) = control(&daemon, "POST", "/v1/containers/plain/attach?stdin=1");
    assert_eq!(status, 409, "{body}");

    // And keeps serving.
    daemon.check_alive()?;
    assert!(daemon.berth_ok(&["ps"])?.contains("plain"));
    daemon.berth_ok(&["rm", "-f", "plain", "stopped"])?;
    Ok(())
}
