//! The adversarial suite: each test drives a real `keyledger serve --dev`
//! child process over HTTP, as a hostile or careless client would, and
//! checks the exact refusal and that nothing was stored or lost.
//!
//! One module per area of the hardening review (issue 14):
//! - [`keys`]: payload sizes on every path, standard keys refusing root-key
//!   actions, expiry and activation checked at each use, HSM error codes.
//! - [`policy`]: dual-authorisation key policies cannot be reverted, and
//!   `verify --policy` flags a log in which one was; key-creation validation.
//! - [`admin`]: anonymous admin commands and ceremony parts write nothing,
//!   malformed admin commands, data-directory permissions.
//! - [`transport`]: authentication before the body, body timeouts,
//!   duplicated headers, the anonymous surface, `/ready`, parser errors.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod keys;
mod policy;
mod transport;
