//! `keyledger verify BUNDLE [--trusted-key FILE] [--trusted-checkpoint FILE] [--json]`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::verify::{self, Trust};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Bundle directory written by `keyledger ledger export`.
    pub bundle: PathBuf,
    /// File with the trusted ledger public key(s) (note verifier key lines).
    #[arg(long)]
    pub trusted_key: Option<PathBuf>,
    /// An earlier checkpoint (signed note) the log must be consistent with.
    #[arg(long)]
    pub trusted_checkpoint: Option<PathBuf>,
    /// Print a machine-readable JSON report.
    #[arg(long)]
    pub json: bool,
}

/// Exit codes: 0 intact, 1 tampered (report names the first bad position),
/// 2 the input could not be read.
pub fn run(args: &VerifyArgs) -> ExitCode {
    match verify_with(args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("keyledger: error: {e}"),
                }
            } else if let Some(failure) = &report.failure {
                println!("FAILED: {failure}");
                if let Some(position) = failure.position() {
                    println!("first bad position: {position}");
                }
            } else {
                println!(
                    "OK: {} records of instance {} verified; root {}; {} ledger key rotation(s)",
                    report.records, report.instance, report.root, report.key_rotations
                );
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            if args.json {
                println!("{}", serde_json::json!({ "ok": false, "error": message }));
            }
            eprintln!("keyledger: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn verify_with(args: &VerifyArgs) -> Result<verify::Report, String> {
    let mut trust = Trust::default();
    if let Some(path) = &args.trusted_key {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        trust.keys = verify::parse_trusted_keys(&text).map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.trusted_checkpoint {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        trust.checkpoint = Some(text);
    }
    let total = std::fs::metadata(args.bundle.join(crate::bundle::RECORDS_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() && !args.json {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "verifying {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = verify::verify_bundle(&args.bundle, &trust, &|done| bar.set_position(done))
        .map_err(|e| e.to_string());
    bar.finish_and_clear();
    report
}
