//! keyledger-core: the ledger's format, rules and verifier, with no server,
//! database, HSM, network or async runtime in its dependency tree
//! (`scripts/check-verifier-deps` checks that).
//!
//! - [`event`]: the event envelope, actors and the event catalogue.
//! - [`chain`], [`record`]: BLAKE3 chain links, record signatures, record
//!   frames and their streaming reader.
//! - [`merkle`]: the RFC 9162 Merkle tree, inclusion and consistency proofs.
//! - [`checkpoint`]: C2SP signed notes and note verifier keys.
//! - [`bundle`]: the bundle format (layout, manifest), for reading.
//! - [`governance`], [`master_key`], [`keys`]: governance command documents
//!   and rules, the master-key projection, the key state machine and key
//!   projections; [`projections`] applies them all in log order.
//! - [`roles`]: the role table the server authorises bearer requests with.
//! - [`verify`]: the offline verifier, including `--policy`'s replay.
//!
//! Still to do (issue 15): `verify` and `bundle` read bundle directories
//! with `std::fs` and `verify` runs a reader thread; both are to take
//! `std::io::Read` from the caller, with threads behind an optional
//! feature. The public API is still every module, not yet a curated one.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bundle;
pub mod chain;
pub mod checkpoint;
pub mod decide;
pub mod event;
pub mod governance;
pub mod keys;
pub mod master_key;
pub mod merkle;
pub mod projections;
pub mod reason;
pub mod record;
pub mod roles;
pub mod verify;
