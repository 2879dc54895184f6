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
//! which berthd points at `shim.log`. For the same reason one shim process
//! lives in two phases, each a fresh exec of this binary:
//!
//! - *setup* (`--dir D`, or `--dir D --again kept|fresh` for a restart):
//!   reads the spec, makes the cgroup, creates and starts the container —
//!   the heavy code (spec parsing, seccomp compilation);
//! - *watch* (`--dir D --watch PID STARTED_MS NETNS FDS…`): pumps the
//!   output into the log, serves the attach socket of a container with
//!   `-i` or `-t` (whose terminal master or stdin pipe it holds), waits,
//!   records, and for a restart execs the setup phase again. It touches
//!   little code and starts with a fresh heap, so the long idle part of a
//!   container's life costs little.
//!
//! The container stays this process's child across the exec (same pid).
//!
//! `exec --dir D --config JSON` is a third, short-lived use: one more
//! process in the running container (see `exec.rs`).

mod client;
mod exec;
mod monitor;
mod pump;
mod record;
mod streams;
mod watch;

use std::path::PathBuf;

fn usage() -> std::process::ExitCode {
    eprintln!(
        "usage: berth-shim --dir CONTAINER_DIR | berth-shim exec --dir CONTAINER_DIR --config JSON (started by berthd)"
    );
    std::process::ExitCode::from(2)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `exec --dir D --config JSON`: one process in the running container
    // of D (berth exec, health checks); exits with the command's code.
    if let [verb, d, dir, c, config] = args.as_slice()
        && verb == "exec"
        && d == "--dir"
        && c == "--config"
    {
        let config = match serde_json::from_str(config) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("berth-shim exec: --config is not an exec request: {e}");
                return std::process::ExitCode::from(125);
            }
        };
        let code = exec::exec(std::path::Path::new(dir), &config);
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(125));
    }
    let (dir, rest) = match args.split_first_chunk::<2>() {
        Some(([flag, dir], rest)) if flag == "--dir" => (PathBuf::from(dir), rest),
        _ => return usage(),
    };
    let result = match rest {
        [] => {
            // Its own session, so it outlives the daemon. Done here rather
            // than in a pre_exec hook: without one the daemon spawns the
            // shim with posix_spawn (CLONE_VFORK), which does not copy a
            // page table that a loaded plugin engine makes large.
            if let Err(e) = nix::unistd::setsid() {
                eprintln!("berth-shim: setsid: {e}");
            }
            monitor::run(&dir, None)
        }
        [again, netns] if again == "--again" => match netns.as_str() {
            "kept" => monitor::run(&dir, Some(true)),
            "fresh" => monitor::run(&dir, Some(false)),
            _ => return usage(),
        },
        [watch, args @ ..] if watch == "--watch" => match watch::Watch::from_args(args) {
            Some(w) => watch::run(&dir, w),
            None => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-shim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
