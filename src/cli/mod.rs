//! Command-line interface. Command names and flags are a contract: scripts
//! drive the product by them.

mod admin_cmds;
mod admin_remote;
mod export_cmd;
#[cfg(feature = "client")]
mod export_remote;
mod generate;
mod hsm_args;
mod ledger_cmds;
#[cfg(feature = "server")]
mod serve_cmd;
mod storage_args;
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
    /// Write an instance's records as SIEM lines (CADF, OCSF, CEF, LEEF, JSON lines).
    Export(export_cmd::ExportArgs),
    /// Run the REST server (Key Protect v2 API).
    #[cfg(feature = "server")]
    Serve(serve_cmd::ServeArgs),
    /// Create instances (operators; they hold no role inside one).
    Instance {
        #[command(subcommand)]
        command: InstanceCommand,
    },
    /// Administrator keys and signed commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommandCli,
    },
}

#[derive(Subcommand)]
enum InstanceCommand {
    /// Create an instance (own log, ledger key and later master key) with
    /// its initial administrator; it starts in imprint mode.
    Create(admin_cmds::InstanceCreateArgs),
}

#[derive(Subcommand)]
enum AdminCommandCli {
    /// Generate an administrator's ed25519 key pair (private file 0600 + .pub).
    Keygen(admin_cmds::KeygenArgs),
    /// Write an unsigned command document (instance, command, nonce, expiry).
    Draft(admin_cmds::DraftArgs),
    /// Add your signature to a command file (offline).
    Sign(admin_cmds::SignArgs),
    /// Submit a signed command to an instance: in a local data directory
    /// (--data-dir) or on a server (--url).
    Submit(admin_cmds::SubmitArgs),
    /// Key owners: show a server's master-key ceremony (generation, ceremony
    /// public key, registered and loaded key owners); the request is signed
    /// with the owner's key.
    CeremonyStatus(admin_cmds::CeremonyStatusArgs),
    /// Key owners: seal a master-key part to the server's ceremony key,
    /// sign it and submit it.
    SubmitPart(admin_cmds::SubmitPartArgs),
    /// Print a new API token and its SHA-256 digest for `credential.issue`.
    NewToken,
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
    #[command(flatten)]
    pub database: storage_args::DatabaseArgs,
}

impl DataArgs {
    /// The stores these flags name (PostgreSQL or the embedded files).
    pub fn storage(&self) -> Result<crate::instance::Storage, String> {
        self.database.storage(&self.data_dir)
    }
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
        Command::Export(args) => export_cmd::run(&args),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve_cmd::run(&args),
        Command::Instance { command } => match command {
            InstanceCommand::Create(args) => admin_cmds::instance_create(&args),
        },
        Command::Admin { command } => match command {
            AdminCommandCli::Keygen(args) => admin_cmds::keygen(&args),
            AdminCommandCli::Draft(args) => admin_cmds::draft(&args),
            AdminCommandCli::Sign(args) => admin_cmds::sign(&args),
            AdminCommandCli::Submit(args) => admin_cmds::submit(&args),
            AdminCommandCli::CeremonyStatus(args) => admin_remote::ceremony_status(&args),
            AdminCommandCli::SubmitPart(args) => admin_remote::submit_part(&args),
            AdminCommandCli::NewToken => admin_cmds::new_token(),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyledger: error: {message}");
            ExitCode::from(2)
        }
    }
}
