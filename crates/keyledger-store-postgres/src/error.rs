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
    /// The connection string is malformed or asks for something the store
    /// does not support (such as `sslmode=allow`).
    #[error("connection string: {0}")]
    ConnectionString(String),
    /// The TLS settings could not be loaded (root file, system roots), or
    /// the server's certificate was refused.
    #[error("TLS to the database: {0}")]
    Tls(String),
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
        OpenError::Database(describe(&e))
    }
}

/// A driver error with what it wraps: the server's message for an error
/// the server sent (the driver's own text is only "db error"), else the
/// chain of causes (connection refused, TLS handshake, ...).
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        source = cause.source();
    }
    text
}

impl From<r2d2::Error> for OpenError {
    fn from(e: r2d2::Error) -> Self {
        OpenError::Database(format!("connection pool: {e}"))
    }
}

/// A driver error as a store error.
pub(crate) fn db(e: postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {}", describe(&e)))
}

/// A pool error (no connection within the timeout) as a store error.
pub(crate) fn pool(e: r2d2::Error) -> StoreError {
    StoreError::Backend(format!("postgres connection pool: {e}"))
}

/// Whether `e` is a unique-key violation (another append won the race).
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
