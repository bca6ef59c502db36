//! keyledger-core: the ledger's format, its rules and the offline verifier.
//! It is everything an auditor needs besides a public key, and nothing
//! more. Its normal dependency tree holds no server, database, HSM, network,
//! TLS or async runtime (`scripts/check-verifier-deps` checks that).
//!
//! # Crate map
//!
//! The format, from the bytes up:
//! - [`event`]: the event envelope (stored bytes, parsed view and the
//!   writer's field order), actors and the catalogue of event types with
//!   their JSON Schemas.
//! - [`chain`]: BLAKE3 chain links and the message a record signature
//!   covers.
//! - [`record`]: a signed record, its frame, and a streaming frame reader.
//! - [`merkle`]: the RFC 9162 Merkle tree, with inclusion and consistency
//!   proofs.
//! - [`checkpoint`]: C2SP checkpoints, signed notes and note keys.
//! - [`bundle`]: the export bundle's layout and manifest.
//!
//! What the log means:
//! - [`governance`]: administrator command documents and their signatures,
//!   the governance projection and the rules commands and gated operations
//!   must pass.
//! - [`master_key`]: the master-key projection (key owners, ceremony,
//!   generations).
//! - [`keys`]: the key state machine, the key projection with its queries
//!   and list filter, and the import-token projection.
//! - [`Projections`]: every projection applied together, in log order.
//! - [`roles`]: what each credential role may do.
//!
//! Checking it:
//! - [`verify`]: the offline verifier (chain, signatures, key authority,
//!   Merkle root, checkpoints), and the policy replay of `verify --policy`.
//!
//! # What core promises
//!
//! Core does no I/O of its own. The verifier takes a bundle's parts as
//! bytes and its records as a `std::io::Read`; `keyledger-verify` opens
//! bundle directories. Its only threads sit behind the `parallel` feature,
//! which is on by default and runs a reader thread and rayon. Without that
//! feature, verification runs in the caller's thread and gives the same
//! reports. Projections are pure: `apply` never fails, and rebuilding from
//! the same events gives an equal value.
//!
//! Implementation modules are private. Each public module is a namespace of
//! re-exported items or a small module documented item by item.
//!
//! Every public item is documented (`#![deny(missing_docs)]`), the event
//! payloads field by field. Those field docs are also the `description`s
//! of the event schemas in `schemas/events/`; the OpenAPI schemas of
//! `SignedCommand` and `AdminSignature` are kept without them
//! (docs/CORE-API.md, "`missing_docs`").
#![forbid(unsafe_code)]
#![deny(missing_docs)]
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
mod projections;
pub mod reason;
pub mod record;
pub mod roles;
pub mod verify;

pub use projections::Projections;
