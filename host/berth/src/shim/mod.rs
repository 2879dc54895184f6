//! `berth-shim`: the monitor of one container. berthd starts one per
//! container; it owns the container process (created by `berth-runtime`),
//! places it in its cgroup, writes its output to log files, waits for it
//! and records how it ended. It is not a child that dies with berthd: a
//! container outlives `kill -9` of the daemon, and the restarted daemon
//! reads what the shim wrote in the container's directory.
//!
//! The shim is a separate small binary (no async runtime, no HTTP), so an
//! idle monitor costs little memory.
//!
//! Files in the container directory (the protocol with the daemon):
//! - `config.json` — the OCI runtime spec, written by the daemon;
//! - `shim.json` — `ShimConfig`, written by the daemon;
//! - `start` — a FIFO: the shim waits for one byte on it before starting
//!   the container, so the daemon can set up networking first;
//! - `shim.pid` — the shim's own pid: while it lives, the container is not over;
//! - `pid` — the container's host pid, written after create;
//! - `exit.json` — `ExitRecord`, written when the container ends (or
//!   could not be created: code 125/126/127).
//! - `stdout.log`, `stderr.log` — the container's output.

mod monitor;

pub use monitor::run;
