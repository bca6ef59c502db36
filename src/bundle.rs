//! Export bundles: the format and reading from `keyledger_core::bundle`,
//! writing from `keyledger_ledger::export`, under their old paths.
pub use keyledger_core::bundle::*;
pub use keyledger_ledger::export::{ExportError, export_bundle};
