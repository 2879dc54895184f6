//! The berth binaries' shared code: `berthd` (the daemon) and `berth` (the
//! CLI). This is the one crate that wires core and host crates together;
//! it holds no registry, storage or auth logic of its own.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod plugins;
pub mod registry_server;
pub mod root_dir;
