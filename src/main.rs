//! The `fulfillment` binary: parses the command line, sets up logging, runs
//! the command, and turns any error into one line on stderr and exit code 1.

use clap::Parser;
use fulfillment::cli::{Cli, Command, run};

fn main() -> std::process::ExitCode {
    fulfillment::memory::limit_arenas();
    let cli = Cli::parse();
    fulfillment::telemetry::init(cli.log_format);
    // The commands that serve connections need file descriptors; the
    // others keep their output free of the note.
    if matches!(
        cli.command,
        Command::Serve(_) | Command::Demo(_) | Command::Bench(_)
    ) {
        fulfillment::service::raise_open_file_limit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // One per process (the demo runs two services in it).
    runtime.spawn(fulfillment::memory::trim_after_bursts());
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
