//! The offline verifier at its old path: `keyledger-core`'s verifier
//! (over bytes and readers) plus `keyledger-verify`'s functions that open a
//! bundle directory.

pub use keyledger_core::verify::*;
pub use keyledger_verify::{manifest_of, read_manifest, verify_bundle, verify_policy};
