//! `posctl`: posbridge's command line.
//!
//! Today it has the demo: `posctl demo` starts the terminal simulator on 127.0.0.1, pairs with
//! it, and runs a sale, a refund authorised by an operator PIN, a pre-authorisation and its
//! capture, a status query and a settlement reconciled against what the app recorded, printing
//! receipts and the record as it goes.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// posbridge's command line.
#[derive(Parser, Debug)]
#[command(
    name = "posctl",
    version,
    about = "Connect to card-payment terminals and run payments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a whole day at the till against the embedded terminal simulator on 127.0.0.1:
    /// pairing, sale, refund with operator PIN, pre-authorisation and capture, status,
    /// settlement with reconciliation.
    Demo(demo::DemoArgs),
}

/// Exit codes: 0 success, 1 a payment step failed, 2 the command line was wrong (clap), 3 the
/// connection failed.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("posctl: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(args)),
    }
}
