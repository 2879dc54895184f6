//! Running one container process with isolation by default. This crate
//! owns the OCI runtime spec berth generates ([`build_spec`]: Docker's
//! defaults for capabilities, mounts, masked paths, seccomp, environment
//! and user) and carries a spec out ([`Container`]): PID, mount, UTS, IPC,
//! network and cgroup namespaces, the root file system and its mounts,
//! `pivot_root`, limits, user, capabilities, seccomp, exec; and the verbs
//! on a running container's processes: [`exec`] one more (joining a
//! [`ContainerInit`], the init by a pidfd verified to be the container's),
//! [`top`] list them.
//! With `process.terminal` the init gets a pty of the container's own
//! devpts, whose master the caller takes ([`Container::take_terminal`]);
//! [`attach`] is the protocol a monitor serves it by.
//!
//! It never decides cgroup limits or networking (the callers do that
//! between [`Container::create`] and [`Container::start`], with
//! [`Container::pid`] and [`Container::net_ns_path`]), and it never mounts
//! the image's layers: the rootfs comes mounted.
//!
//! ```no_run
//! # fn demo() -> Result<(), berth_runtime::RuntimeError> {
//! use berth_runtime::{build_spec, Container, ImageDefaults, RunOptions, Stdio};
//! let rootfs = std::path::Path::new("/run/berth/c1/rootfs");
//! let image = ImageDefaults { cmd: Some(vec!["echo".into(), "hi".into()]), ..Default::default() };
//! let spec = build_spec("c1", rootfs, &image, &RunOptions::default())?;
//! let mut c = Container::create("c1", &spec, Stdio::default())?;
//! // place c.pid() in a cgroup, configure c.net_ns_path() ...
//! c.start()?;
//! let code = c.wait()?.code();
//! # let _ = code; Ok(()) }
//! ```

pub mod attach;
mod caps;
mod console;
mod container;
mod container_init;
pub mod devices;
mod error;
mod etc;
mod exec;
mod exec_tty;
mod init;
mod kernel;
pub mod logfile;
mod plan;
pub mod seccomp;
mod seccomp_bpf;
mod seccomp_profile;
pub mod shim_files;
mod spec;
mod syscall_table;
mod top;
mod user;

pub use console::resize_terminal;
pub use container::{Container, ExitStatus, Stdio};
pub use container_init::ContainerInit;
pub use error::RuntimeError;
pub use exec::{ExecOptions, ExecUser, exec, merge_env};
pub use spec::{
    DEFAULT_CAPABILITIES, DEFAULT_PATH, ExtraMount, ImageDefaults, MASKED_PATHS, RunOptions,
    Ulimit, build_spec, parse_capability,
};
pub use top::{TOP_TITLES, TopRow, top};
pub use user::{ResolvedUser, resolve_user, resolve_user_from, resolve_user_in};

/// Create, start and wait: the exit code `docker run` would give,
/// including 125/126/127 for failures before the command ran.
pub fn run(id: &str, spec: &oci_spec::runtime::Spec, stdio: Stdio) -> i32 {
    let mut c = match Container::create(id, spec, stdio) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(id, error = %e, "container create failed");
            return e.exit_code();
        }
    };
    if let Err(e) = c.start() {
        tracing::warn!(id, error = %e, "container start failed");
        return e.exit_code();
    }
    match c.wait() {
        Ok(s) => s.code(),
        Err(_) => 125,
    }
}
