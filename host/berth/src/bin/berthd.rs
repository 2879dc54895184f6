//! `berthd`: the berth daemon, in the foreground.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = berth::daemon::Args::parse();
    match berth::daemon::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
