//! The keyledger instance log on PostgreSQL: an [`EventStore`] whose
//! instance logs (records, perfect-subtree hashes, latest checkpoint) live
//! in one PostgreSQL database that several keyledger servers may share.
//!
//! - [`PostgresStore`]: opens a connection pool, applies the versioned
//!   migrations of `schemas/postgres/` ([`migrate`]), creates, opens and
//!   lists instances.
//! - [`PostgresLog`]: one instance's log; every append is one transaction
//!   that takes the instance's head row `FOR UPDATE`, so concurrent appends
//!   from any number of servers make one gap-free chain.
//!
//! See `docs/STORE-POSTGRES.md`. Not wired into the CLI or server yet.
//!
//! [`EventStore`]: keyledger_ledger::store::EventStore

mod error;
mod log;
pub mod migrate;
mod store;

pub use error::OpenError;
pub use log::PostgresLog;
pub use store::{DEFAULT_POOL_SIZE, PostgresStore};
