#![allow(dead_code)]
//! Helpers shared by this crate's integration tests.

#[path = "../../../../tests/common/events.rs"]
pub mod events;
pub mod fixture;
pub mod flaky_log;
