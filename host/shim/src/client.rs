//! A connection to the attach socket (see `berth_runtime::attach`): its
//! first frame, and for an attached client the frames both ways. The
//! client is berthd, so a connection that does not say what it wants at
//! once is dropped rather than waited for.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use berth_runtime::attach::{self, FrameTooLarge};
use berth_runtime::shim_files::ExitRecord;

/// How long a new connection may take to send its first frame.
const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one write to an attached client may block the pump before the
/// client is dropped: a stuck client must not stop the container's output
/// (which still goes to the log) for long.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// What a new connection asks for.
pub enum Hello {
    Attach(Client),
    Resize(u16, u16),
}

/// The attached client.
pub struct Client {
    conn: UnixStream,
    /// Its stdin goes to the container's (it asked, and the container has `-i`).
    pub stdin: bool,
    unread: Vec<u8>,
}

/// Read the first frame of `conn`; `None` (with a message) if it is not
/// an attach or a resize.
pub fn greet(conn: UnixStream, open_stdin: bool) -> Option<Hello> {
    let mut conn = conn;
    let mut head = [0u8; 8];
    let read = conn
        .set_read_timeout(Some(HELLO_TIMEOUT))
        .and_then(|()| conn.read_exact(&mut head));
    if let Err(e) = read {
        eprintln!("berth-shim: an attach connection sent no request: {e}");
        return None;
    }
    // Both first frames have a payload of at most 4 bytes.
    let kind = head[0];
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let mut payload = [0u8; 4];
    if len > payload.len() || conn.read_exact(&mut payload[..len]).is_err() {
        eprintln!("berth-shim: an attach connection sent a malformed request");
        return None;
    }
    match (kind, &payload[..len]) {
        (attach::ATTACH, [flags]) => {
            let ready = conn
                .set_read_timeout(None)
                .and_then(|()| conn.set_write_timeout(Some(SEND_TIMEOUT)));
            if let Err(e) = ready {
                eprintln!("berth-shim: setting up an attach connection: {e}");
                return None;
            }
            Some(Hello::Attach(Client {
                conn,
                stdin: open_stdin && flags & 1 == 1,
                unread: Vec::new(),
            }))
        }
        (attach::RESIZE, p) => attach::size_of_resize(p).map(|(r, c)| Hello::Resize(r, c)),
        _ => {
            eprintln!("berth-shim: an attach connection asked for {kind:#x}, which is not known");
            None
        }
    }
}

/// The run could not start: the clients that attached meanwhile (queued
/// on the socket) get the error on stderr and the exit code.
pub fn tell_queued(listener: std::os::fd::OwnedFd, open_stdin: bool, exit: &ExitRecord) {
    let listener = std::os::unix::net::UnixListener::from(listener);
    while let Ok((conn, _)) = listener.accept() {
        if let Some(Hello::Attach(mut client)) = greet(conn, open_stdin) {
            if let Some(error) = &exit.error {
                let _ = client.send(attach::STDERR, format!("berth: {error}\n").as_bytes());
            }
            let _ = client.send(attach::EXIT, exit.code.to_string().as_bytes());
        }
    }
}

impl Client {
    pub fn conn(&self) -> &UnixStream {
        &self.conn
    }

    /// Send one frame; an error means the client is gone or stuck.
    pub fn send(&mut self, kind: u8, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(attach::MAX_PAYLOAD) {
            self.conn.write_all(&attach::header(kind, chunk.len()))?;
            self.conn.write_all(chunk)?;
        }
        Ok(())
    }

    /// Read what the client sent (the socket is readable) and hand each
    /// whole frame to `each`. `Ok(false)`: the client hung up.
    pub fn receive(
        &mut self,
        buf: &mut [u8],
        mut each: impl FnMut(u8, &[u8]),
    ) -> Result<bool, ClientError> {
        let n = match self.conn.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(ClientError::Io(e)),
        };
        self.unread.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Some((kind, payload)) = attach::split(&self.unread[at..])? {
            each(kind, payload);
            at += 8 + payload.len();
        }
        self.unread.drain(..at);
        Ok(true)
    }
}

/// Why an attached client is dropped.
#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    Frame(FrameTooLarge),
}

impl From<FrameTooLarge> for ClientError {
    fn from(e: FrameTooLarge) -> Self {
        ClientError::Frame(e)
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "reading from the attached client: {e}"),
            ClientError::Frame(e) => write!(f, "the attached client sent {e}"),
        }
    }
}
