//! `keyledger verify BUNDLE [--trusted-key FILE] [--trusted-checkpoint FILE] [--policy] [--json]`,
//! or `keyledger verify --url URL --instance NAME --token-file FILE [...]`,
//! which downloads the bundle from a server (auditor role) into a temporary
//! directory and verifies that exactly as a local one.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use keyledger_verify::{Options, Outcome, Phase, Progress};

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

/// Exit codes: 0 intact (and, with `--policy`, no event breaks the rules),
/// 1 tampered (the report names the first bad position) or a policy
/// violation (one line per violating event), 2 the input could not be read.
/// A local bundle is verified and reported by `keyledger-verify`'s library,
/// the same code as the `keyledger-verify` binary.
pub fn run(args: &VerifyArgs) -> ExitCode {
    let options = Options {
        trusted_key: args.trusted_key.clone(),
        trusted_checkpoint: args.trusted_checkpoint.clone(),
        policy: args.policy,
        json: args.json,
    };
    let result = verify_with(args, &options);
    ExitCode::from(keyledger_verify::report(
        &result,
        &options,
        "keyledger",
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ))
}

/// A progress bar on a terminal's stderr (hidden otherwise, and with
/// `--json`).
struct Bar {
    json: bool,
    bar: std::cell::RefCell<ProgressBar>,
}

impl Progress for Bar {
    fn start(&self, phase: Phase, total: u64) {
        let action = match phase {
            Phase::Verifying => "verifying",
            Phase::ReplayingPolicy => "replaying policy",
        };
        *self.bar.borrow_mut() = progress_bar(total, self.json, action);
    }

    fn advance(&self, done: u64) {
        self.bar.borrow().set_position(done);
    }

    fn finish(&self) {
        self.bar.borrow().finish_and_clear();
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

fn verify_with(args: &VerifyArgs, options: &Options) -> Result<Outcome, String> {
    let downloaded = match &args.url {
        Some(url) => Some(download(args, url)?),
        None => None,
    };
    let bundle = match (&downloaded, &args.bundle) {
        (Some(temp), _) => temp.0.clone(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => return Err("name a bundle directory or --url".into()),
    };
    let bar = Bar {
        json: args.json,
        bar: std::cell::RefCell::new(ProgressBar::hidden()),
    };
    keyledger_verify::verify_dir(&bundle, options, &bar)
}
