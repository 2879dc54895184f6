//! Copying the container's stdout and stderr pipes into the log until both
//! close (which they do when the container's PID namespace ends).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::SystemTime;

use berth_runtime::logfile::{LineBuffer, LogWriter, Stream};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Pump both pipes into `log` until both reach end of file.
pub fn pump(stdout: OwnedFd, stderr: OwnedFd, log: &mut LogWriter) {
    let mut pipes = [
        Some((File::from(stdout), Stream::Stdout, LineBuffer::default())),
        Some((File::from(stderr), Stream::Stderr, LineBuffer::default())),
    ];
    let mut buf = vec![0u8; 32 * 1024];
    let mut warned = false;
    let mut write = |log: &mut LogWriter, stream: Stream, content: &[u8], partial: bool| {
        // A full disk must not block the container: drop the entry, say so once.
        if let Err(e) = log.write(stream, content, partial, SystemTime::now())
            && !warned
        {
            warned = true;
            eprintln!("berth-shim: writing the container log: {e}; output is being lost");
        }
        Ok(())
    };
    loop {
        let open: Vec<usize> = (0..2).filter(|i| pipes[*i].is_some()).collect();
        if open.is_empty() {
            return;
        }
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = open
                .iter()
                .filter_map(|i| pipes[*i].as_ref())
                .map(|(f, _, _)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("berth-shim: polling the container's output: {e}");
                    return;
                }
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        for (slot, is_ready) in open.into_iter().zip(ready) {
            if !is_ready {
                continue;
            }
            let Some((file, stream, lines)) = pipes[slot].as_mut() else {
                continue;
            };
            let stream = *stream;
            match file.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => {
                    let _ = lines.finish(&mut |c, p| write(log, stream, c, p));
                    pipes[slot] = None;
                }
                Ok(n) => {
                    let _ = lines.push(&buf[..n], &mut |c, p| write(log, stream, c, p));
                }
            }
        }
    }
}
