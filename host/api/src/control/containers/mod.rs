//! `/v1/containers`: create and run containers through a `berth-shim`
//! monitor each, and the Docker verbs on them. The shim writes what happens
//! (pid, exit code, output) into the container's directory, so a container
//! outlives the daemon and a restarted daemon reads its state back.

mod create;
mod lifecycle;
mod logs;
mod mounts;
mod policy;
mod ports;
mod record;
mod resources;
mod start;

pub use berth_runtime::shim_files::{ExitRecord, ShimConfig, read_exit, write_atomic};
pub use create::parse_log_opts;
pub use ports::{Ports, reopen_all};
pub use record::{ContainerRecord, Status};
pub use start::revive_all;

pub(crate) use create::run;
pub(crate) use lifecycle::{inspect, kill, list, remove, stop, wait};
pub(crate) use logs::logs;
pub(crate) use resources::{pause, stats, unpause};
pub(crate) use start::{restart, start};
