//! `berth-shim --dir CONTAINER_DIR`: the monitor of one container. berthd
//! starts one per container; it owns the container process (created by
//! `berth-runtime`), places it in its cgroup, pipes its output into the
//! container log, waits for it, restarts it as its restart policy says,
//! and records how it ended. It is not a child that dies with berthd: a
//! container (and its restarts) outlives `kill -9` of the daemon, and the
//! restarted daemon reads what the shim wrote in the container's directory
//! (the files are listed in `berth_runtime::shim_files`).
//!
//! It is its own small crate so that an idle monitor costs little memory:
//! no async runtime, no HTTP, no log subscriber; messages go to stderr,
//! which berthd points at `shim.log`.

mod monitor;
mod pump;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let dir = match (args.next(), args.next()) {
        (Some(flag), Some(dir)) if flag == "--dir" => std::path::PathBuf::from(dir),
        _ => {
            eprintln!("usage: berth-shim --dir CONTAINER_DIR (started by berthd)");
            return std::process::ExitCode::from(2);
        }
    };
    match monitor::run(&dir) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-shim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
