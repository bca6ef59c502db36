//! The keyledger instance log and key-material store on PostgreSQL: an
//! [`EventStore`] whose instance logs (records, perfect-subtree hashes,
//! latest checkpoint) live in one PostgreSQL database that several
//! keyledger servers may share, and a [`KeyMaterialStore`] (wrapped key
//! versions, import tokens) in the same database.
//!
//! - [`PostgresStore`]: opens a connection pool, applies the versioned
//!   migrations of `schemas/postgres/` ([`migrate`]), creates, opens and
//!   lists instances.
//! - [`PostgresLog`]: one instance's log; every append is one transaction
//!   that takes the instance's head row `FOR UPDATE`, so concurrent appends
//!   from any number of servers make one gap-free chain.
//! - [`PostgresMaterialStore`]: wrapped key material and import tokens,
//!   from [`PostgresStore::material_store`] (same pool); idempotent puts,
//!   compare-and-swap rotation under a row lock, purge by `DELETE`.
//!
//! - [`open_storage`]: both as the `Storage` the server and the command
//!   line open for `--database-url`.
//! - [`notify`]: every append notifies the other servers; a listener
//!   tells a server which instances to catch up.
//! - [`sink_lease`]: which server forwards each SIEM sink, and its cursor.
//! - `tls`: `sslmode` / `sslrootcert` of connection strings, rustls
//!   (docs/STORE-POSTGRES-HA.md).
//!
//! Several servers append to one instance through the ledger's shared
//! writer (`PostgresLog` says it is shared): each batch is sequenced under
//! the head-row lock after the records other servers appended. See
//! `docs/STORE-POSTGRES.md` and `docs/SCALING.md`.
//!
//! [`EventStore`]: keyledger_ledger::store::EventStore
//! [`KeyMaterialStore`]: keyledger_kms::material::KeyMaterialStore

mod error;
mod log;
mod material;
pub mod migrate;
pub mod notify;
pub mod sink_lease;
mod storage;
mod store;
mod tls;

pub use error::OpenError;
pub use log::PostgresLog;
pub use material::PostgresMaterialStore;
pub use sink_lease::SinkLease;
pub use storage::open_storage;
pub use store::{DEFAULT_POOL_SIZE, PostgresStore};
