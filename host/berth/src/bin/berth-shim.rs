//! `berth-shim --dir CONTAINER_DIR`: the monitor of one container (see
//! `berth::shim`). Started by berthd, never by hand.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let dir = match (args.next(), args.next()) {
        (Some(flag), Some(dir)) if flag == "--dir" => std::path::PathBuf::from(dir),
        _ => {
            eprintln!("usage: berth-shim --dir CONTAINER_DIR (started by berthd)");
            return std::process::ExitCode::from(2);
        }
    };
    match berth::shim::run(&dir) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-shim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
