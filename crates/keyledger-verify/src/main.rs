//! `keyledger-verify BUNDLE [--trusted-key FILE] [--trusted-checkpoint FILE] [--policy] [--json]`:
//! exactly what `keyledger verify BUNDLE` does, from a binary built on
//! `keyledger-core` and clap alone.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use keyledger_verify::{Options, Silent, report, verify_dir};

/// Verify a keyledger bundle offline: exit 0 when intact (and, with
/// --policy, no event breaks the rules), 1 when not, 2 when it cannot be read.
#[derive(Parser)]
#[command(name = "keyledger-verify", version)]
struct Args {
    /// Bundle directory written by `keyledger ledger export`.
    bundle: PathBuf,
    /// File with the trusted ledger public key(s) (note verifier key lines).
    #[arg(long)]
    trusted_key: Option<PathBuf>,
    /// An earlier checkpoint (signed note) the log must be consistent with.
    #[arg(long)]
    trusted_checkpoint: Option<PathBuf>,
    /// Also replay the governance rules over the log and flag every event
    /// they forbid, even when the ledger key signed it (docs/VERIFY-POLICY.md).
    #[arg(long)]
    policy: bool,
    /// Print a machine-readable JSON report.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        trusted_key: args.trusted_key,
        trusted_checkpoint: args.trusted_checkpoint,
        policy: args.policy,
        json: args.json,
    };
    let result = verify_dir(&args.bundle, &options, &Silent);
    let code = report(
        &result,
        &options,
        "keyledger-verify",
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
