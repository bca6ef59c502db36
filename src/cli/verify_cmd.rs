//! `keyledger verify BUNDLE [--trusted-key FILE] [--trusted-checkpoint FILE] [--policy] [--json]`,
//! or `keyledger verify --url URL --instance NAME --token-file FILE [...]`,
//! which downloads the bundle from a server (auditor role) into a temporary
//! directory and verifies that exactly as a local one.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::verify::{self, PolicyReport, Trust};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Bundle directory written by `keyledger ledger export`.
    #[arg(required_unless_present = "url", conflicts_with = "url")]
    pub bundle: Option<PathBuf>,
    /// Download the bundle from this keyledger server instead
    /// (`GET /api/v2/ledger/bundle`; needs an auditor token).
    #[arg(long, requires_all = ["instance", "token_file"])]
    pub url: Option<String>,
    /// Instance to download (with --url).
    #[arg(long, requires = "url")]
    pub instance: Option<String>,
    /// File holding the auditor's bearer token (with --url).
    #[arg(long, requires = "url")]
    pub token_file: Option<PathBuf>,
    /// File with the trusted ledger public key(s) (note verifier key lines).
    #[arg(long)]
    pub trusted_key: Option<PathBuf>,
    /// An earlier checkpoint (signed note) the log must be consistent with.
    #[arg(long)]
    pub trusted_checkpoint: Option<PathBuf>,
    /// Also replay the governance rules over the log and flag every event
    /// they forbid, even when the ledger key signed it (docs/VERIFY-POLICY.md).
    #[arg(long)]
    pub policy: bool,
    /// Print a machine-readable JSON report.
    #[arg(long)]
    pub json: bool,
}

/// What a verification found: integrity, then (with `--policy`, on an
/// intact log) the policy replay.
struct Outcome {
    report: verify::Report,
    policy: Option<PolicyReport>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.report.ok() && self.policy.as_ref().is_none_or(|p| p.ok)
    }
}

/// Exit codes: 0 intact (and, with `--policy`, no event breaks the rules),
/// 1 tampered (the report names the first bad position) or a policy
/// violation (one line per violating event), 2 the input could not be read.
pub fn run(args: &VerifyArgs) -> ExitCode {
    match verify_with(args) {
        Ok(outcome) => {
            if args.json {
                print_json(args, &outcome);
            } else {
                print_text(args, &outcome);
            }
            if outcome.ok() {
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

/// The integrity report's fields, plus `policy` with `--policy` (null when
/// the log failed integrity verification and was not replayed).
fn print_json(args: &VerifyArgs, outcome: &Outcome) {
    let value = serde_json::to_value(&outcome.report).map(|mut v| {
        if args.policy
            && let Some(map) = v.as_object_mut()
        {
            let policy = serde_json::to_value(&outcome.policy).unwrap_or_default();
            map.insert("policy".into(), policy);
        }
        v
    });
    match value.and_then(|v| serde_json::to_string_pretty(&v)) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("keyledger: error: {e}"),
    }
}

fn print_text(args: &VerifyArgs, outcome: &Outcome) {
    let report = &outcome.report;
    if let Some(failure) = &report.failure {
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
    if !args.policy {
        return;
    }
    match &outcome.policy {
        None => println!("policy: not replayed (the log failed integrity verification)"),
        Some(policy) => {
            for finding in &policy.findings {
                println!("{finding}");
            }
            let unlisted = policy.violations - policy.findings.len() as u64;
            if unlisted > 0 {
                println!("... and {unlisted} more policy violation(s)");
            }
            if policy.ok {
                println!(
                    "policy OK: {} events replayed, no rule broken",
                    policy.events
                );
            } else {
                println!(
                    "policy FAILED: {} violation(s) in {} events",
                    policy.violations, policy.events
                );
            }
        }
    }
}

fn progress_bar(total: u64, json: bool, action: &str) -> ProgressBar {
    if std::io::stderr().is_terminal() && !json {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{action} {{bar:40}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}}"
        )) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    }
}

/// A temporary bundle directory, removed on drop.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
struct TempBundle(PathBuf);

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(feature = "client")]
fn download(args: &VerifyArgs, url: &str) -> Result<TempBundle, String> {
    let (Some(instance), Some(token_file)) = (&args.instance, &args.token_file) else {
        return Err("--url needs --instance and --token-file".into());
    };
    let token = crate::client::Client::read_token(token_file)?;
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce).map_err(|_| "random number generator failed")?;
    let dir = std::env::temp_dir().join(format!(
        "keyledger-verify-{}-{}",
        std::process::id(),
        hex::encode(nonce)
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let temp = TempBundle(dir);
    crate::client::Client::new(url, instance, Some(token)).download_bundle(&temp.0)?;
    Ok(temp)
}

#[cfg(not(feature = "client"))]
fn download(_args: &VerifyArgs, _url: &str) -> Result<TempBundle, String> {
    Err("this build has no HTTP client (cargo feature `client`); download the bundle with `keyledger ledger export` or build with --features client".into())
}

fn verify_with(args: &VerifyArgs) -> Result<Outcome, String> {
    let downloaded = match &args.url {
        Some(url) => Some(download(args, url)?),
        None => None,
    };
    let bundle = match (&downloaded, &args.bundle) {
        (Some(temp), _) => temp.0.clone(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => return Err("name a bundle directory or --url".into()),
    };
    verify_dir(args, &bundle)
}

fn verify_dir(args: &VerifyArgs, bundle: &std::path::Path) -> Result<Outcome, String> {
    let mut trust = Trust::default();
    if let Some(path) = &args.trusted_key {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        trust.keys = verify::parse_trusted_keys(&text).map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.trusted_checkpoint {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        trust.checkpoint = Some(text);
    }
    let total = std::fs::metadata(bundle.join(crate::bundle::RECORDS_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let bar = progress_bar(total, args.json, "verifying");
    let report = verify::verify_bundle(bundle, &trust, &|done| bar.set_position(done))
        .map_err(|e| e.to_string());
    bar.finish_and_clear();
    let report = report?;
    let policy = if args.policy && report.ok() {
        let bar = progress_bar(total, args.json, "replaying policy");
        let policy = verify::verify_policy(bundle, &|done| bar.set_position(done))
            .map_err(|e| e.to_string());
        bar.finish_and_clear();
        Some(policy?)
    } else {
        None
    };
    Ok(Outcome { report, policy })
}
