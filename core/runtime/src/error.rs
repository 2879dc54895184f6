//! The crate's error type and the exit codes Docker gives each failure.

use std::io;
use std::path::PathBuf;

/// What went wrong while preparing, starting or waiting for a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound { group: String },
    #[error("invalid user spec {spec:?}: {reason}")]
    BadUser { spec: String, reason: String },
    #[error("invalid capability {name:?}: use a name such as NET_ADMIN or CAP_NET_ADMIN")]
    BadCapability { name: String },
    #[error("invalid ulimit {name:?}: use a name such as nofile or nproc")]
    BadUlimit { name: String },
    #[error("invalid mount {destination}: {reason}")]
    BadMount { destination: String, reason: String },
    #[error("no command: the image has no Entrypoint or Cmd and none was given")]
    NoCommand,
    #[error("invalid runtime spec: {reason}")]
    BadSpec { reason: String },
    #[error("seccomp profile: {0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("{what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        err: io::Error,
    },
    /// A path of the container's root file system, resolved inside it.
    #[error(transparent)]
    InRoot(#[from] berth_fsroot::FsRootError),
    #[error("{what}: {err}")]
    Sys {
        what: &'static str,
        #[source]
        err: io::Error,
    },
    /// Container setup failed inside the new namespaces, before exec.
    #[error("container setup failed: {stage}{detail}: {err}")]
    Setup {
        stage: &'static str,
        detail: String,
        #[source]
        err: io::Error,
    },
    /// The container's command could not be executed.
    #[error("exec {command:?}: {err}{hint}")]
    Exec {
        command: String,
        hint: &'static str,
        #[source]
        err: io::Error,
    },
    /// The pid recorded for a running container names another process:
    /// its init ended and the number was reused, or the file was changed.
    #[error(
        "process {pid}, recorded as the container's, is not the container's init ({reason}): \
         refusing to join, read or signal it; if the container has just stopped, see `berth ps -a`"
    )]
    NotTheContainer { pid: i32, reason: String },
    #[error("container {id} is {state}, cannot {action}")]
    State {
        id: String,
        state: &'static str,
        action: &'static str,
    },
}

impl RuntimeError {
    /// The exit code `docker run` gives this failure: 127 when the command
    /// does not exist, 126 when it cannot be executed, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Exec { err, .. } => exec_exit_code(err.raw_os_error().unwrap_or(0)),
            _ => 125,
        }
    }
}

/// 127 for "not found", 126 for "found but cannot run", as Docker does.
pub(crate) fn exec_exit_code(errno: i32) -> i32 {
    match errno {
        libc::ENOENT | libc::ENOTDIR => 127,
        libc::EACCES | libc::ENOEXEC | libc::EPERM | libc::EISDIR | libc::ETXTBSY => 126,
        _ => 125,
    }
}

pub(crate) fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> RuntimeError {
    let path = path.into();
    move |err| RuntimeError::Io { what, path, err }
}
