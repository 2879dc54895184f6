//! The watch phase's one loop, until the container's output ends (which
//! it does when its PID namespace ends): its stdout and stderr pipes, or
//! its terminal, into the log and to the attached client if there is one;
//! that client's input into the container's stdin pipe or terminal; new
//! connections on the attach socket. One thread and one poll, so an idle
//! monitor costs what it did; a container without `-i` or `-t` has no
//! socket and no stdin here at all.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::SystemTime;

use berth_runtime::attach;
use berth_runtime::logfile::{LineBuffer, LogWriter, Stream};
use berth_runtime::shim_files::ShimConfig;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::client::{Client, Hello, greet};
use crate::streams::{Output, Streams};

struct Source {
    file: File,
    stream: Stream,
    lines: LineBuffer,
}

#[derive(Clone, Copy)]
enum Role {
    Source(usize),
    Stdin,
    Listen,
    Client,
}

struct Pump<'a> {
    /// Open outputs: stdout and stderr pipes, or the terminal alone (slot 0).
    sources: [Option<Source>; 2],
    tty: bool,
    /// The container's stdin pipe (`-i` without `-t`).
    stdin: Option<File>,
    listener: Option<UnixListener>,
    client: Option<Client>,
    /// Input read from the client, not yet taken by the container.
    pending: Vec<u8>,
    /// Close the stdin pipe once `pending` is written (Docker's StdinOnce).
    close_stdin: bool,
    config: &'a ShimConfig,
    log: Option<&'a mut LogWriter>,
    warned: bool,
}

fn nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map(OFlag::from_bits_truncate);
    if let Err(e) =
        flags.and_then(|f| fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(f | OFlag::O_NONBLOCK)))
    {
        eprintln!("berth-shim: making an fd non-blocking: {e}");
    }
}

/// Pump until the output ends; returns the client attached then, which
/// is owed the exit code.
pub fn pump(streams: Streams, config: &ShimConfig, log: Option<&mut LogWriter>) -> Option<Client> {
    let source = |fd: OwnedFd, stream| {
        Some(Source {
            file: File::from(fd),
            stream,
            lines: LineBuffer::default(),
        })
    };
    let (sources, tty) = match streams.output {
        Output::Pipes { stdout, stderr } => (
            [
                source(stdout, Stream::Stdout),
                source(stderr, Stream::Stderr),
            ],
            false,
        ),
        Output::Terminal(master) => {
            // Reads and writes both go through the poll: neither may block it.
            nonblocking(&master);
            // As Docker: a terminal's output is the container's stdout.
            ([source(master, Stream::Stdout), None], true)
        }
    };
    if let Some(fd) = &streams.stdin {
        nonblocking(fd);
    }
    let listener = streams.attach.map(UnixListener::from);
    let mut p = Pump {
        sources,
        tty,
        stdin: streams.stdin.map(File::from),
        listener,
        client: None,
        pending: Vec::new(),
        close_stdin: false,
        config,
        log,
        warned: false,
    };
    p.run();
    p.client.take()
}

impl Pump<'_> {
    fn run(&mut self) {
        let mut buf = vec![0u8; 32 * 1024];
        while self.sources.iter().any(Option::is_some) {
            let ready = match self.wait() {
                Ok(r) => r,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("berth-shim: polling the container's output: {e}");
                    return;
                }
            };
            // A client that connected before the output it should see
            // is attached before that output is read.
            for (role, flags) in &ready {
                if let Role::Listen = role {
                    self.accept();
                } else if let Role::Client = role {
                    self.read_client(&mut buf);
                } else if matches!(role, Role::Stdin) || flags.contains(PollFlags::POLLOUT) {
                    // POLLERR on the stdin pipe: the container closed it; the
                    // write says so.
                    self.write_input(*role);
                }
            }
            for (role, flags) in ready {
                if let Role::Source(i) = role
                    && flags.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                {
                    self.read_source(i, &mut buf);
                }
            }
        }
    }

    /// Poll what is open; the roles that are ready and how.
    fn wait(&self) -> nix::Result<Vec<(Role, PollFlags)>> {
        let mut roles = Vec::with_capacity(5);
        let mut fds = Vec::with_capacity(5);
        let has_input = !self.pending.is_empty();
        for (i, s) in self.sources.iter().enumerate() {
            if let Some(s) = s {
                let mut events = PollFlags::POLLIN;
                if self.tty && has_input {
                    events |= PollFlags::POLLOUT;
                }
                roles.push(Role::Source(i));
                fds.push(PollFd::new(s.file.as_fd(), events));
            }
        }
        if let Some(stdin) = &self.stdin
            && has_input
        {
            roles.push(Role::Stdin);
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(l) = &self.listener {
            roles.push(Role::Listen);
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        // No more input is read while the container has not taken the
        // last, but a client that leaves meanwhile is noticed.
        if let Some(c) = &self.client {
            let events = if has_input {
                // nix has no name for it.
                PollFlags::from_bits_retain(nix::libc::POLLRDHUP)
            } else {
                PollFlags::POLLIN
            };
            roles.push(Role::Client);
            fds.push(PollFd::new(c.conn().as_fd(), events));
        }
        poll(&mut fds, PollTimeout::NONE)?;
        Ok(roles
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, r)| !r.is_empty())
            .collect())
    }

    fn accept(&mut self) {
        let mut conns = Vec::new();
        if let Some(listener) = &self.listener {
            loop {
                match listener.accept() {
                    Ok((conn, _)) => conns.push(conn),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        eprintln!("berth-shim: accepting on the attach socket: {e}");
                        break;
                    }
                }
            }
        }
        for conn in conns {
            match greet(conn, self.config.open_stdin) {
                Some(Hello::Attach(new)) => {
                    // One client at a time: the newest wins.
                    if let Some(old) = self.client.replace(new) {
                        self.detached(old);
                    }
                }
                Some(Hello::Resize(rows, cols)) => self.resize(rows, cols),
                None => {}
            }
        }
    }

    fn read_client(&mut self, buf: &mut [u8]) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        let (mut input, mut ended, mut size) = (Vec::new(), false, None);
        let takes_stdin = client.stdin;
        let got = client.receive(buf, |kind, payload| match kind {
            attach::STDIN if takes_stdin => input.extend_from_slice(payload),
            attach::CLOSE_STDIN => ended = true,
            attach::RESIZE => size = attach::size_of_resize(payload).or(size),
            _ => {}
        });
        self.pending.extend_from_slice(&input);
        if let Some((rows, cols)) = size {
            self.resize(rows, cols);
        }
        match got {
            Ok(true) => {
                if ended && client.stdin {
                    client.stdin = false;
                    self.stdin_ended();
                }
                self.client = Some(client);
            }
            Ok(false) => self.detached(client),
            Err(e) => {
                eprintln!("berth-shim: {e}; detaching it");
                self.detached(client);
            }
        }
    }

    /// The attached client left (or was replaced).
    fn detached(&mut self, client: Client) {
        if client.stdin {
            self.stdin_ended();
        }
    }

    /// A client's stdin ended: with StdinOnce the container's does too,
    /// once it has what came before. A terminal stays open (as Docker).
    fn stdin_ended(&mut self) {
        if self.config.stdin_once && !self.tty && self.stdin.is_some() {
            self.close_stdin = true;
            self.settle_stdin();
        }
    }

    fn settle_stdin(&mut self) {
        if self.close_stdin && self.pending.is_empty() {
            self.stdin = None;
        }
    }

    /// Give the container what it can take of `pending`.
    fn write_input(&mut self, role: Role) {
        let target = match role {
            Role::Stdin => self.stdin.as_ref(),
            Role::Source(0) if self.tty => self.sources[0].as_ref().map(|s| &s.file),
            _ => None,
        };
        let Some(mut target) = target else {
            return;
        };
        match target.write(&self.pending) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                // The container closed its stdin (EPIPE): nothing more goes in.
                self.pending.clear();
                if let Role::Stdin = role {
                    self.stdin = None;
                }
            }
        }
        self.settle_stdin();
    }

    fn resize(&mut self, rows: u16, cols: u16) {
        if let (true, Some(s)) = (self.tty, &self.sources[0])
            && let Err(e) = berth_runtime::resize_terminal(s.file.as_fd(), rows, cols)
        {
            eprintln!("berth-shim: resizing the terminal: {e}");
        }
    }

    fn read_source(&mut self, slot: usize, buf: &mut [u8]) {
        let Some(source) = self.sources[slot].as_mut() else {
            return;
        };
        let stream = source.stream;
        let warned = &mut self.warned;
        let log = &mut self.log;
        let mut write = |content: &[u8], partial: bool| {
            // A full disk must not block the container: drop the entry, say so once.
            if let Some(log) = log.as_deref_mut()
                && let Err(e) = log.write(stream, content, partial, SystemTime::now())
                && !*warned
            {
                *warned = true;
                eprintln!("berth-shim: writing the container log: {e}; output is being lost");
            }
            Ok(())
        };
        match source.file.read(buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            // EOF on a pipe; EIO on a terminal whose every user is gone.
            Ok(0) | Err(_) => {
                let _ = source.lines.finish(&mut write);
                self.sources[slot] = None;
            }
            Ok(n) => {
                let _ = source.lines.push(&buf[..n], &mut write);
                if let Some(client) = self.client.as_mut() {
                    let kind = match stream {
                        Stream::Stdout => attach::STDOUT,
                        Stream::Stderr => attach::STDERR,
                    };
                    if let Err(e) = client.send(kind, &buf[..n]) {
                        eprintln!(
                            "berth-shim: the attached client is gone or stuck ({e}); detaching it"
                        );
                        if let Some(c) = self.client.take() {
                            self.detached(c);
                        }
                    }
                }
            }
        }
    }
}
