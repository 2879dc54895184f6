//! A loopback TCP port that forwards each connection to a unix socket, for
//! HTTP tools that cannot reach berthd's control socket themselves
//! (schemathesis). Bytes only: it knows nothing of HTTP.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Listening on `addr` until dropped; connections in flight end with either side.
#[derive(Debug)]
pub struct UnixProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UnixProxy {
    /// Forwards `127.0.0.1:<free port>` to the unix socket at `socket`.
    pub fn start(socket: &Path) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, socket) = (stop.clone(), socket.to_path_buf());
        std::thread::spawn(move || accept_loop(&listener, &socket, &flag));
        Ok(UnixProxy { addr, stop })
    }
}

impl Drop for UnixProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn accept_loop(listener: &TcpListener, socket: &PathBuf, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(tcp) = conn else { continue };
        let Ok(unix) = UnixStream::connect(socket) else {
            continue;
        };
        let (Ok(tcp2), Ok(unix2)) = (tcp.try_clone(), unix.try_clone()) else {
            continue;
        };
        std::thread::spawn(move || pump(tcp, unix, |u| u.shutdown(Shutdown::Write)));
        std::thread::spawn(move || pump(unix2, tcp2, |t| t.shutdown(Shutdown::Write)));
    }
}

/// Copies `from` to `to` until EOF or an error, then closes `to` for writing.
fn pump<R: Read, W: Write>(mut from: R, mut to: W, close: impl FnOnce(&W) -> std::io::Result<()>) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = close(&to);
}
