#![allow(dead_code)]
//! Helpers shared by the integration tests.

pub mod events;
pub mod fixture;
pub mod store_conformance;
pub mod secrets_scan;
