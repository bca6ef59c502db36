#![allow(dead_code)]
//! Helpers shared by this crate's integration tests: real bundles written by
//! the ledger writer, one copy shared with the root package's tests.

// One copy, shared with the root package's tests.
#[path = "../../../../tests/common/fixture.rs"]
pub mod fixture;
