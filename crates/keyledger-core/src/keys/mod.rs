//! Pure key rules and projections.
#![deny(missing_docs)]
pub mod import_token;
pub mod list_filter;
pub mod payload;
pub mod projection;
pub mod state;
