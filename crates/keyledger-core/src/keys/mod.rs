//! Pure key rules and projections.

pub mod import_token;
pub mod list_filter;
pub mod payload;
pub mod projection;
pub mod state;
