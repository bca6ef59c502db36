//! Crash points for kill tests: when the environment variable
//! `KEYLEDGER_FAILPOINT` names a point the process reaches, it prints
//! `failpoint <name>: aborting` to stderr and aborts (SIGABRT, no unwinding,
//! no destructors, no flush: as abrupt as `kill -9` for everything that
//! matters here, since every write before the point is already durable).
//!
//! Inert unless the variable is set to one of the names below; the check is
//! one environment lookup on the crypto worker's path (a few per gated
//! operation, never on wrap/unwrap). `crates/keyledger-kms/tests/approvals.rs` sets it only in the
//! child processes it kills.

/// The variable naming the point to abort at.
pub const ENV: &str = "KEYLEDGER_FAILPOINT";

/// After the approval that completes a request's quorum is durable, before
/// the worker executes the request.
pub const WORKER_AFTER_QUORUM: &str = "worker-after-quorum";

/// After the worker's effect (material shredded by a purge, a rotation's new
/// version written to the material store), before its outcome event.
pub const WORKER_AFTER_EFFECT: &str = "worker-after-effect";

/// Aborts the process if `KEYLEDGER_FAILPOINT` is `name`.
pub(super) fn hit(name: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
