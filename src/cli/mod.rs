//! Command-line interface. Command names and flags are a contract: scripts
//! drive the product by them.

mod generate;
mod hsm_args;
mod ledger_cmds;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// keyledger: an event-sourced, audit-first key ledger.
#[derive(Parser)]
#[command(name = "keyledger", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Operate on an instance's ledger (operators).
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Verify an exported bundle offline; exit 0 when intact, 1 when not.
    Verify(verify_cmd::VerifyArgs),
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Append N realistic events of the real types through the real writer.
    Generate(generate::GenerateArgs),
    /// Write a self-contained bundle (records, latest checkpoint, public keys).
    Export(ledger_cmds::ExportArgs),
    /// Rotate the instance's ledger key (the rotation is signed by the old key).
    RotateKey(ledger_cmds::InstanceArgs),
    /// Print the instance's ledger public keys (note verifier keys), oldest first.
    Keys(ledger_cmds::InstanceArgs),
    /// Sign and print a checkpoint of the current log.
    Checkpoint(ledger_cmds::InstanceArgs),
}

/// Flags naming an instance's data.
#[derive(clap::Args, Clone)]
pub struct DataArgs {
    /// Data directory (embedded store and ledger keys).
    #[arg(long, env = "KEYLEDGER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Instance name.
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub hsm: hsm_args::HsmArgs,
}

/// Runs the command line and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ledger { command } => match command {
            LedgerCommand::Generate(args) => generate::run(&args),
            LedgerCommand::Export(args) => ledger_cmds::export(&args),
            LedgerCommand::RotateKey(args) => ledger_cmds::rotate_key(&args),
            LedgerCommand::Keys(args) => ledger_cmds::keys(&args),
            LedgerCommand::Checkpoint(args) => ledger_cmds::checkpoint(&args),
        },
        Command::Verify(args) => return verify_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyledger: error: {message}");
            ExitCode::from(2)
        }
    }
}
