#![allow(dead_code)]
//! Helpers shared by this crate's integration tests: SoftHSM2 tokens (also
//! used by the root package's PKCS#11 tests), and, one copy each, the root
//! package's secret scanner and known-answer vector reader (the vectors stay
//! in the root's `tests/vectors/`).

// One copy, shared with the root package's tests.
#[path = "../../../../tests/common/secrets_scan.rs"]
pub mod secrets_scan;
pub mod softhsm;
// One copy, shared with the root package's tests.
#[path = "../../../../tests/common/vectors.rs"]
pub mod vectors;
