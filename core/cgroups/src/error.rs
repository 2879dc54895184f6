//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// What went wrong while managing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A read, write, mkdir or rmdir on the cgroup file system failed.
    #[error("cgroup {op} on {path} failed: {source}")]
    Io {
        /// The operation: "read", "write", "mkdir", "rmdir".
        op: &'static str,
        /// The file or directory it touched.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// A write the kernel refused, with the value that was written.
    #[error("cannot set {file} to {value:?} in {path}: {source}")]
    Write {
        /// Control file name, e.g. `memory.limit_in_bytes`.
        file: String,
        /// The value written.
        value: String,
        /// The cgroup directory.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// A resource setting is out of range or inconsistent with another.
    #[error("invalid {setting} {value}: {reason}")]
    InvalidValue {
        /// The user-facing option, e.g. `--memory-swap`.
        setting: &'static str,
        /// The value as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A setting was asked for that this kernel or layout cannot provide.
    #[error("{setting} is not supported here: {reason}")]
    Unsupported {
        /// The user-facing option, e.g. `--blkio-weight`.
        setting: &'static str,
        /// What is missing and what to try.
        reason: String,
    },
    /// No cgroup file system was found, or its layout was not understood.
    #[error("cannot detect the cgroup layout: {reason}")]
    Layout {
        /// What was looked at and what was missing.
        reason: String,
    },
    /// The device filter of a cgroup v2 directory could not be attached,
    /// so its device rules would not be enforced.
    #[error(
        "cannot attach the device filter (a BPF cgroup device program) to {path}: {source}; \
         on cgroup v2 it is what enforces the container's device rules, so the container \
         cannot start without it: run berth as root (CAP_SYS_ADMIN) on a kernel with \
         CONFIG_CGROUP_BPF"
    )]
    DeviceFilter {
        /// The cgroup directory.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// A control file held something we could not parse.
    #[error("cannot parse {path}: unexpected content {content:?}")]
    Parse {
        /// The control file.
        path: PathBuf,
        /// Its content, trimmed.
        content: String,
    },
    /// Sending a signal to a process of the cgroup failed.
    #[error("cannot send signal {signal} to process {pid}: {source}")]
    Signal {
        /// Target process.
        pid: i32,
        /// Signal number.
        signal: i32,
        /// The kernel's answer.
        #[source]
        source: nix::errno::Errno,
    },
    /// The cgroup still held processes (or did not reach a state) in time.
    #[error("timed out after {waited_ms} ms waiting for {path} to {what}")]
    Timeout {
        /// The cgroup directory.
        path: PathBuf,
        /// What was awaited: "become empty", "freeze", ...
        what: &'static str,
        /// How long we waited.
        waited_ms: u64,
    },
}

/// Result alias for this crate.
pub type Result<T, E = CgroupError> = std::result::Result<T, E>;
