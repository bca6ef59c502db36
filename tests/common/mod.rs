#![allow(dead_code)]
//! Helpers shared by the integration tests.

pub mod events;
pub mod fixture;
// One copy, shared with keyledger-ledger's writer tests.
#[path = "../../crates/keyledger-ledger/tests/common/flaky_log.rs"]
pub mod flaky_log;
pub mod http;
// One copy each, shared with keyledger-kms's key-service tests.
#[path = "../../crates/keyledger-kms/tests/common/key_env.rs"]
pub mod key_env;
#[path = "../../crates/keyledger-kms/tests/common/kp_client.rs"]
pub mod kp_client;
pub mod pg;
pub mod rest_env;
pub mod rest_kp_env;
pub mod secrets_scan;
pub mod serve;
// One copy, shared with keyledger-kms's PKCS#11 tests.
#[path = "../../crates/keyledger-kms/tests/common/softhsm.rs"]
pub mod softhsm;
pub mod vectors;
pub mod verifiers;
