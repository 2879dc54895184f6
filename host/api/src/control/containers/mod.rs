//! `/v1/containers`: create and run containers through a `berth-shim`
//! monitor each, and the Docker verbs on them. The shim writes what happens
//! (pid, exit code, output) into the container's directory, so a container
//! outlives the daemon and a restarted daemon reads its state back.

mod create;
mod lifecycle;
mod mounts;
mod policy;
mod ports;
mod record;
mod resources;
mod shim_files;

pub use ports::{Ports, reopen_all};
pub use record::{ContainerRecord, Status};
pub use shim_files::{ExitRecord, ShimConfig, read_exit, write_atomic};

pub(crate) use create::run;
pub(crate) use lifecycle::{inspect, kill, list, logs, remove, stop, wait};
pub(crate) use resources::{pause, stats, unpause};
