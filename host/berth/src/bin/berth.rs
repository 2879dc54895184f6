//! `berth`: the command line client of berthd.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = berth::cli::Cli::parse();
    match berth::cli::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
