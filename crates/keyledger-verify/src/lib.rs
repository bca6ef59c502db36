//! keyledger-verify: the one implementation of "verify a bundle
//! directory", shared by the `keyledger-verify` binary (built from
//! `keyledger-core` and clap alone, for auditors who want to build nothing
//! else) and by `keyledger verify BUNDLE`, so the two give the same exit
//! code and the same output by construction.
//!
//! `keyledger-core` reads no file: this crate opens the bundle directory
//! ([`verify_bundle`], [`verify_policy`], [`read_manifest`]) and hands its
//! bytes and records to core's `verify_records` and `replay_policy`.
//!
//! Exit codes: 0 intact (and, with `--policy`, no event breaks the rules),
//! 1 tampered (the report names the first bad position) or a policy
//! violation (one line per violating event), 2 the input could not be read.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod dir;

use std::io::Write;
use std::path::{Path, PathBuf};

use keyledger_core::bundle::RECORDS_FILE;
use keyledger_core::verify::{self, PolicyReport, Report, Trust};

pub use dir::{manifest_of, read_manifest, verify_bundle, verify_policy};

/// What to verify and how to report it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// File with the trusted ledger public key(s) (note verifier key lines).
    pub trusted_key: Option<PathBuf>,
    /// An earlier checkpoint (signed note) the log must be consistent with.
    pub trusted_checkpoint: Option<PathBuf>,
    /// Also replay the governance rules (`docs/VERIFY-POLICY.md`).
    pub policy: bool,
    /// Print a machine-readable JSON report.
    pub json: bool,
}

/// The phase a progress callback reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Integrity verification of the records.
    Verifying,
    /// The policy replay.
    ReplayingPolicy,
}

/// Receives progress: the phase, the bytes of `records.bin` in all, and
/// how many are done (called repeatedly with `done` growing).
pub trait Progress {
    /// A phase starts over `total` bytes.
    fn start(&self, phase: Phase, total: u64);
    /// `done` bytes of the current phase are processed.
    fn advance(&self, done: u64);
    /// The current phase ended.
    fn finish(&self);
}

/// No progress display.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Phase, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What a verification found: integrity, then (with `--policy`, on an
/// intact log) the policy replay.
#[derive(Debug)]
pub struct Outcome {
    /// The integrity report.
    pub report: Report,
    /// The policy replay (only with `--policy` on an intact log).
    pub policy: Option<PolicyReport>,
}

impl Outcome {
    /// Intact, and no rule broken when the policy was replayed.
    pub fn ok(&self) -> bool {
        self.report.ok() && self.policy.as_ref().is_none_or(|p| p.ok)
    }
}

/// Verifies the bundle directory `bundle`; `Err` when the input cannot be
/// read (exit 2).
pub fn verify_dir(
    bundle: &Path,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Outcome, String> {
    let mut trust = Trust::default();
    if let Some(path) = &options.trusted_key {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        trust.keys = verify::parse_trusted_keys(&text).map_err(|e| e.to_string())?;
    }
    if let Some(path) = &options.trusted_checkpoint {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        trust.checkpoint = Some(text);
    }
    let total = std::fs::metadata(bundle.join(RECORDS_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    progress.start(Phase::Verifying, total);
    let report =
        verify_bundle(bundle, &trust, &|done| progress.advance(done)).map_err(|e| e.to_string());
    progress.finish();
    let report = report?;
    let policy = if options.policy && report.ok() {
        progress.start(Phase::ReplayingPolicy, total);
        let policy =
            verify_policy(bundle, &|done| progress.advance(done)).map_err(|e| e.to_string());
        progress.finish();
        Some(policy?)
    } else {
        None
    };
    Ok(Outcome { report, policy })
}

/// Prints the outcome (or the error) as `keyledger verify` does and
/// returns the exit code: 0, 1 or 2. `program` names the program in error
/// lines on `err`.
pub fn report(
    result: &Result<Outcome, String>,
    options: &Options,
    program: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match result {
        Ok(outcome) => {
            let written = if options.json {
                print_json(options, outcome, out, err, program)
            } else {
                print_text(options, outcome, out)
            };
            if written.is_err() {
                return 2;
            }
            if outcome.ok() { 0 } else { 1 }
        }
        Err(message) => {
            if options.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "ok": false, "error": message })
                );
            }
            let _ = writeln!(err, "{program}: error: {message}");
            2
        }
    }
}

/// The integrity report's fields, plus `policy` with `--policy` (null when
/// the log failed integrity verification and was not replayed).
fn print_json(
    options: &Options,
    outcome: &Outcome,
    out: &mut dyn Write,
    err: &mut dyn Write,
    program: &str,
) -> std::io::Result<()> {
    let value = serde_json::to_value(&outcome.report).map(|mut v| {
        if options.policy
            && let Some(map) = v.as_object_mut()
        {
            let policy = serde_json::to_value(&outcome.policy).unwrap_or_default();
            map.insert("policy".into(), policy);
        }
        v
    });
    match value.and_then(|v| serde_json::to_string_pretty(&v)) {
        Ok(json) => writeln!(out, "{json}"),
        Err(e) => writeln!(err, "{program}: error: {e}"),
    }
}

fn print_text(options: &Options, outcome: &Outcome, out: &mut dyn Write) -> std::io::Result<()> {
    let report = &outcome.report;
    if let Some(failure) = &report.failure {
        writeln!(out, "FAILED: {failure}")?;
        if let Some(position) = failure.position() {
            writeln!(out, "first bad position: {position}")?;
        }
    } else {
        writeln!(
            out,
            "OK: {} records of instance {} verified; root {}; {} ledger key rotation(s)",
            report.records, report.instance, report.root, report.key_rotations
        )?;
    }
    if !options.policy {
        return Ok(());
    }
    match &outcome.policy {
        None => writeln!(
            out,
            "policy: not replayed (the log failed integrity verification)"
        ),
        Some(policy) => {
            for finding in &policy.findings {
                writeln!(out, "{finding}")?;
            }
            let unlisted = policy.violations - policy.findings.len() as u64;
            if unlisted > 0 {
                writeln!(out, "... and {unlisted} more policy violation(s)")?;
            }
            if policy.ok {
                writeln!(
                    out,
                    "policy OK: {} events replayed, no rule broken",
                    policy.events
                )
            } else {
                writeln!(
                    out,
                    "policy FAILED: {} violation(s) in {} events",
                    policy.violations, policy.events
                )
            }
        }
    }
}
