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
//! - Write path: [`signer`] (where the ledger key lives: [`ledger_key`] file
//!   or an HSM backend), [`writer`] (group commit), [`ledger`]
//!   (instance lifecycle), [`store`] (the `EventStore` contract and backends).
//! - [`cli`]: the `keyledger` command line; [`data_dir`]: the data
//!   directory is private to the service user.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub use keyledger_core::{chain, checkpoint, event, governance, master_key, merkle, record};

pub mod admin_key;
pub mod bundle;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod data_dir;
pub mod histogram;
pub mod hsm;
pub mod instance;
pub mod keys;
pub mod ledger;
pub mod ledger_key;
pub mod sample_events;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
pub mod signer;
pub mod store;
pub mod verify;
pub mod writer;
