//! `/v1/containers`: create and run containers through a `berth-shim`
//! monitor each, and the Docker verbs on them. The shim writes what happens
//! (pid, exit code, output) into the container's directory, so a container
//! outlives the daemon and a restarted daemon reads its state back.

mod abandoned;
mod archive;
mod attach;
mod create;
mod exec;
mod health;
mod lifecycle;
mod logs;
mod mounts;
mod policy;
mod ports;
mod record;
mod resources;
mod start;
mod trash;
mod update;

pub use abandoned::clean_abandoned;
pub use attach::Attaches;
pub use berth_runtime::shim_files::{ExecConfig, ExitRecord, ShimConfig, read_exit, write_atomic};
pub use create::parse_log_opts;
pub use exec::{EXIT, ExecRequest, MULTIPLEXED, STDERR, STDOUT};
pub use health::{
    HealthConfig, HealthEvent, HealthFlags, HealthMonitors, HealthResult, HealthState, resume_all,
};
pub use ports::{Ports, reopen_all};
pub use record::{ContainerRecord, Status};
pub use start::revive_all;

pub(crate) use archive::{get_archive, put_archive};
pub(crate) use attach::{attach, resize};
pub(crate) use create::run;
pub(crate) use exec::exec;
pub(crate) use lifecycle::{inspect, kill, list, remove, stop, wait};
pub(crate) use logs::logs;
pub(crate) use resources::{pause, stats, top, unpause};
pub(crate) use start::{restart, start};
pub(crate) use update::update;
