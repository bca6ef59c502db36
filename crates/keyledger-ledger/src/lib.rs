//! keyledger-ledger: the write path of the ledger. It turns event drafts
//! into signed, hash-chained, Merkle-committed records on durable storage,
//! and it knows nothing of HTTP, async runtimes or HSMs (a key held in a
//! device comes in through [`signer::LedgerSigner`] and
//! [`ledger::KeyDevice`], which the layer above implements).
//!
//! - [`writer`]: the per-instance writer, a pipeline of
//!   [sequencer, committer and checkpointer](writer) threads with group
//!   commit.
//! - [`signer`], [`ledger_key`]: who signs records and checkpoints; the
//!   in-process ledger key and its 0600 key file.
//! - [`ledger`]: instance ledgers: create an instance (key and genesis
//!   event), reopen it with the key in force, rotate the key.
//! - [`store`]: the `EventStore`/`InstanceLog` contract and the embedded
//!   backend; [`conformance`] (feature `conformance`) is the suite every
//!   backend runs.
//! - [`audit`]: the read-only audit view of a log ([`audit::AuditLog`]),
//!   which the auditor endpoints and `ledger export` read through.
//! - [`export`]: writing an instance's log as a bundle (the format and its
//!   reading live in `keyledger_core::bundle`).
//! - [`data_dir`]: the private data directory; [`histogram`]: lock-free
//!   latency and size histograms; [`sample_events`]: realistic event drafts
//!   for generators, benchmarks and tests.
//!
//! Depends on `keyledger-core` and never on the root package, actix, tokio
//! or the HSM code (`docs/LEDGER-CRATE.md`).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod data_dir;
pub mod export;
pub mod histogram;
pub mod ledger;
pub mod ledger_key;
pub mod sample_events;
pub mod signer;
pub mod store;
pub mod writer;
