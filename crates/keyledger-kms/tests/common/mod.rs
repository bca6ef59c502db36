#![allow(dead_code)]
//! Helpers shared by this crate's integration tests: a ready key-service
//! instance (`key_env`), an independent Key Protect import client
//! (`kp_client`) and SoftHSM2 tokens (`softhsm`), also used by the root
//! package's end-to-end tests; and, one copy each, the root package's event
//! schema checker, secret scanner and known-answer vector reader (the
//! schemas and vectors stay in the root's `schemas/` and `tests/vectors/`).

// One copy, shared with the root package's tests.
#[path = "../../../../tests/common/events.rs"]
pub mod events;
pub mod key_env;
pub mod kp_client;
// One copy, shared with the root package's tests.
#[path = "../../../../tests/common/secrets_scan.rs"]
pub mod secrets_scan;
pub mod softhsm;
// One copy, shared with the root package's tests.
#[path = "../../../../tests/common/vectors.rs"]
pub mod vectors;
