//! `posctl`: posbridge's command line.
//!
//! `posctl demo` starts the terminal simulator on 127.0.0.1, pairs with it, and runs a sale, a
//! refund authorised by an operator PIN, a pre-authorisation and its capture, a status query and
//! a settlement reconciled against what the app recorded, printing receipts and the record as it
//! goes. The other commands pair with a terminal over TCP or a serial port, run payments
//! (journaled before they are sent), recover what is in doubt, settle and reconcile, show and
//! export the journal, discover terminals in reach, and print shell completions.

/// Like `println!`, but a closed standard output (a script that stopped reading, `| head`) is
/// not a panic: what posctl did (a payment approved and journaled) decides its exit code, not
/// whether anyone still reads its report.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Like `eprintln!`, without the panic on a closed standard error (see `outln!`).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod backoffice;
mod commands;
mod customer;
mod demo;
mod doctor;
mod home;
mod json;
mod secret;
mod update;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// posbridge's command line.
#[derive(Parser, Debug)]
#[command(
    name = "posctl",
    version,
    about = "Connect to card-payment terminals and run payments",
    after_help = "Exit codes: 0 done (approved), 1 failed, 2 bad command line, 3 could not connect, \
                  4 declined (no money moved), 5 outcome in doubt (journaled; run posctl recover).\n\
                  While a payment runs, Ctrl-C asks the terminal to cancel it; a second Ctrl-C stops waiting \
                  (the payment stays journaled, in doubt).\n\
                  State (keys, pairings, journal.db, config.toml) lives in --home, $POSBRIDGE_HOME, \
                  $XDG_CONFIG_HOME/posbridge or ~/.config/posbridge."
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
    /// Pairs with a terminal using the code on its screen and keeps it as a profile.
    Pair(commands::PairArgs),
    /// Takes a payment (journaled before it is sent; in-doubt payments are recovered first).
    Sale(commands::SaleArgs),
    /// Pays money back (needs an operator), referring to a sale or not.
    Refund(commands::RefundArgs),
    /// Cancels a transaction of the open batch (needs an operator).
    Void(commands::VoidArgs),
    /// Releases a pre-authorisation without taking money (needs an operator): the deposit goes
    /// back to the customer.
    Release(commands::ReleaseArgs),
    /// Reserves an amount to capture later (hotels, car rental).
    Preauth(commands::PreauthArgs),
    /// Completes a pre-authorisation with the final amount (and a tip).
    Capture(commands::CaptureArgs),
    /// Asks the terminal what became of a payment, by idempotency key; without one, shows the
    /// terminal itself (battery, power, paper, acquirer link: native protocol 1.1).
    Status(commands::StatusArgs),
    /// Shows a cart and its total on the terminal's customer display (native protocol 1.1).
    Display(customer::DisplayArgs),
    /// Asks the customer on the terminal's screen: a tip, yes or no, a number, a signature
    /// (native protocol 1.1). Exit code 4 when the customer does not answer in time.
    Ask(customer::AskArgs),
    /// Installs a software update its publisher signed on the terminal (native protocol 1.1):
    /// resumes an interrupted transfer, reports progress; the terminal checks the signature and
    /// the image before it installs and restarts.
    Update(update::UpdateArgs),
    /// The publisher's side of updates: signs an image's manifest with the publisher's key.
    UpdateSign(update::UpdateSignArgs),
    /// Resolves every payment in doubt (after a crash, a disconnect or a timeout).
    Recover(commands::RecoverArgs),
    /// Closes the terminal's batch and reconciles it against the journal: kind by kind on the
    /// native protocol; over ZVT (end-of-day) by the net total, which ZVT does not break down,
    /// counting what came after the settlement kept before.
    Settle(commands::SettleArgs),
    /// Reconciles a kept settlement report with the journal as it is now (after recovery).
    Reconcile(commands::ReconcileArgs),
    /// Asks the terminal to cancel a payment that is still running or in doubt (one started
    /// by a posctl that was interrupted or crashed).
    Cancel(commands::CancelArgs),
    /// Settles by hand a payment recovery could not (a person checked the terminal): charged,
    /// or not charged. Only for payments still open; needs no terminal.
    Resolve(commands::ResolveArgs),
    /// Shows or exports the journal.
    Journal(commands::JournalArgs),
    /// Lists the terminals this till is paired with, or revokes a pairing (the terminal's
    /// keys are deleted here and its profiles removed; revoke the till on the terminal too).
    Pairings(commands::PairingsArgs),
    /// Lists the terminals in reach: on the LAN (mDNS), serial ports, and with the `usb` and
    /// `ble` features USB devices and Bluetooth LE terminals.
    Discover(commands::DiscoverArgs),
    /// Diagnoses the way to a terminal step by step (port or address, reachability, pairing,
    /// protocol version, clock, what it accepts) and prints the fix for each failure.
    Doctor(doctor::DoctorArgs),
    /// Reads the chain's reports from a posbridge back office (docs/backoffice.md): journal
    /// totals, settlements against the journals, payments in doubt, transaction ids booked
    /// twice, tills that stopped uploading. The token comes from $POSBRIDGE_BACKOFFICE_TOKEN
    /// or --token-file.
    Backoffice(backoffice::BackofficeArgs),
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Exit codes: see `after_help` on [`Cli`].
/// Whether `--json` was given anywhere on the command line (a global flag: at any level).
fn wants_json(matches: &clap::ArgMatches) -> bool {
    let here = matches!(matches.try_get_one::<bool>("json"), Ok(Some(true)));
    here || matches.subcommand().is_some_and(|(_, sub)| wants_json(sub))
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    json::enable(wants_json(&matches));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("posctl: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::Pair(args) => commands::finish(runtime.block_on(commands::pair(args))),
        Command::Sale(args) => commands::finish(runtime.block_on(commands::sale(args))),
        Command::Refund(args) => commands::finish(runtime.block_on(commands::refund(args))),
        Command::Void(args) => commands::finish(runtime.block_on(commands::void(args))),
        Command::Release(args) => commands::finish(runtime.block_on(commands::release(args))),
        Command::Preauth(args) => commands::finish(runtime.block_on(commands::preauth(args))),
        Command::Capture(args) => commands::finish(runtime.block_on(commands::capture(args))),
        Command::Status(args) => commands::finish(runtime.block_on(commands::status(args))),
        Command::Display(args) => commands::finish(runtime.block_on(customer::display(args))),
        Command::Ask(args) => commands::finish(runtime.block_on(customer::ask(args))),
        Command::Update(args) => commands::finish(runtime.block_on(update::update(args))),
        Command::UpdateSign(args) => commands::finish(update::update_sign(args)),
        Command::Recover(args) => commands::finish(runtime.block_on(commands::recover(args))),
        Command::Settle(args) => commands::finish(runtime.block_on(commands::settle(args))),
        Command::Journal(args) => commands::finish(commands::journal(args)),
        Command::Pairings(args) => commands::finish(commands::pairings(args)),
        Command::Reconcile(args) => commands::finish(commands::reconcile(args)),
        Command::Cancel(args) => commands::finish(runtime.block_on(commands::cancel(args))),
        Command::Resolve(args) => commands::finish(commands::resolve(args)),
        Command::Doctor(args) => commands::finish(runtime.block_on(doctor::doctor(args))),
        Command::Discover(args) => commands::finish(runtime.block_on(commands::discover(args))),
        Command::Backoffice(args) => commands::finish(runtime.block_on(backoffice::report(args))),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "posctl", &mut script);
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(&script);
            ExitCode::SUCCESS
        }
    }
}
