//! Errors of opening a store, and the mapping of driver and pool errors
//! onto [`StoreError`].

use keyledger_ledger::store::StoreError;

/// Why a [`PostgresStore`](crate::PostgresStore) could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database was migrated by a newer keyledger: this binary does not
    /// know its schema and refuses to touch it.
    #[error(
        "the database schema is at version {found}, newer than this keyledger knows (up to {known}); \
         run a keyledger at least as new as the one that migrated the database"
    )]
    SchemaTooNew { found: i32, known: i32 },
    /// The database could not be reached or refused a statement.
    #[error("postgres: {0}")]
    Database(String),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<postgres::Error> for OpenError {
    fn from(e: postgres::Error) -> Self {
        OpenError::Database(e.to_string())
    }
}

impl From<r2d2::Error> for OpenError {
    fn from(e: r2d2::Error) -> Self {
        OpenError::Database(format!("connection pool: {e}"))
    }
}

/// A driver error as a store error.
pub(crate) fn db(e: postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

/// A pool error (no connection within the timeout) as a store error.
pub(crate) fn pool(e: r2d2::Error) -> StoreError {
    StoreError::Backend(format!("postgres connection pool: {e}"))
}

/// Whether `e` is a unique-key violation (another append won the race).
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
