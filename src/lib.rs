//! keyledger: an event-sourced, audit-first key ledger.
//!
//! Every key and admin operation is an ed25519-signed event appended to a
//! BLAKE3 hash-chained, RFC 9162 Merkle-committed log (see
//! `docs/LEDGER-FORMAT.md` for the byte-exact format and
//! `docs/ARCHITECTURE.md` for how the pieces fit).
//!
//! - Verifier core, pure (no network, no database), in the `keyledger-core`
//!   crate and re-exported here at their old paths: [`event`], [`record`],
//!   [`chain`], [`merkle`], [`checkpoint`], [`governance`],
//!   [`master_key`]; [`verify`] adds `keyledger-verify`'s bundle-directory
//!   readers to core's verifier; [`bundle`] adds export to core's bundle
//!   format.
//! - Write path, in the `keyledger-ledger` crate and re-exported here at
//!   their old paths: [`writer`] (group commit), [`ledger_key`], [`store`]
//!   (the `EventStore` contract and the embedded backend), [`data_dir`],
//!   [`histogram`], [`sample_events`].
//! - Key management, in the `keyledger-kms` crate and re-exported here at
//!   their old paths: [`hsm`] (the HSM capabilities and backends),
//!   [`secret`]; [`signer`] and [`ledger`] add the HSM as a place for the
//!   ledger key (`HsmSigner`, the ledger types with `dyn HsmBackend` as
//!   their key device).
//! - [`life`]: a generated, rule-abiding life of an instance (`ledger
//!   generate`, benchmarks, demos).
//! - [`cli`]: the `keyledger` command line.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub use keyledger_core::{chain, checkpoint, event, governance, master_key, merkle, record};
pub use keyledger_kms::{admin_key, hsm, instance, ledger, secret, signer};
pub use keyledger_ledger::{audit, data_dir, histogram, ledger_key, sample_events, store, writer};

pub mod bundle;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod keys;
pub mod life;
/// The REST server, in the `keyledger-server` crate.
#[cfg(feature = "server")]
pub use keyledger_server as server;
pub mod verify;
