//! The fds the setup phase hands to the watch phase, and how they cross
//! the exec between them: as `key=FD` arguments, the fds themselves kept
//! open (not close-on-exec) for the exec alone.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Where the container's output comes from.
pub enum Output {
    /// Without `-t`: the read ends of its stdout and stderr pipes.
    Pipes { stdout: OwnedFd, stderr: OwnedFd },
    /// With `-t`: the master side of its terminal, output and input alike.
    Terminal(OwnedFd),
}

/// Everything the watch phase reads, writes and listens on.
pub struct Streams {
    pub output: Output,
    /// With `-i` and without `-t`: the write end of the container's stdin pipe.
    pub stdin: Option<OwnedFd>,
    /// With `-i` or `-t`: the listening attach socket.
    pub attach: Option<OwnedFd>,
}

fn keep_across_exec(fd: &OwnedFd) -> nix::Result<()> {
    nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map(drop)
}

impl Streams {
    fn named(&self) -> Vec<(&'static str, &OwnedFd)> {
        let mut fds = match &self.output {
            Output::Pipes { stdout, stderr } => vec![("out", stdout), ("err", stderr)],
            Output::Terminal(master) => vec![("tty", master)],
        };
        fds.extend(self.stdin.iter().map(|f| ("in", f)));
        fds.extend(self.attach.iter().map(|f| ("attach", f)));
        fds
    }

    /// `out=N err=N` or `tty=N`, then `in=N` and `attach=N` if present.
    pub fn to_args(&self) -> Vec<String> {
        self.named()
            .into_iter()
            .map(|(k, fd)| format!("{k}={}", fd.as_raw_fd()))
            .collect()
    }

    /// Clear close-on-exec on every fd, for the exec of the watch phase.
    pub fn keep_across_exec(&self) -> nix::Result<()> {
        self.named()
            .into_iter()
            .try_for_each(|(_, fd)| keep_across_exec(fd))
    }

    /// The inverse of [`to_args`](Self::to_args); `None` if an argument is
    /// unknown, repeated, or names an fd that is not open.
    pub fn from_args(args: &[String]) -> Option<Streams> {
        let mut seen: Vec<(&str, i32)> = Vec::new();
        for a in args {
            let (k, v) = a.split_once('=')?;
            let fd: i32 = v.parse().ok()?;
            if !["out", "err", "tty", "in", "attach"].contains(&k)
                || seen.iter().any(|(sk, sfd)| *sk == k || *sfd == fd)
            {
                return None;
            }
            // The fd must be open: fcntl fails on a closed one.
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).ok()?;
            seen.push((k, fd));
        }
        let find = |key: &str| seen.iter().find(|(k, _)| *k == key).map(|(_, fd)| *fd);
        let take = |fd: i32| {
            // SAFETY: the setup phase passed us this open fd as ours alone
            // (each number once, checked above); nothing else here refers to it.
            unsafe { OwnedFd::from_raw_fd(fd) }
        };
        let output = match (find("tty"), find("out"), find("err")) {
            (Some(t), None, None) => Output::Terminal(take(t)),
            (None, Some(o), Some(e)) => Output::Pipes {
                stdout: take(o),
                stderr: take(e),
            },
            _ => return None,
        };
        Some(Streams {
            output,
            stdin: find("in").map(take),
            attach: find("attach").map(take),
        })
    }
}
