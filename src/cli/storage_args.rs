//! `--database-url`: which stores a command opens. PostgreSQL (with the
//! `postgres` feature) when a URL is given, flag or `KEYLEDGER_DATABASE_URL`;
//! otherwise the embedded store in the data directory.

use std::path::Path;

use crate::instance::Storage;

/// The database flag every command that opens an instance takes.
#[derive(clap::Args, Clone, Default)]
pub struct DatabaseArgs {
    /// PostgreSQL holding the instance logs and key material (a libpq URL
    /// or connection string, e.g. `host=a,b dbname=keyledger
    /// target_session_attrs=read-write`); the data directory still holds
    /// the ledger keys. Without it: the embedded store in the data directory.
    #[arg(long, env = "KEYLEDGER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("DatabaseArgs")
            .field("database_url", &self.database_url.as_ref().map(|_| ".."))
            .finish()
    }
}

impl DatabaseArgs {
    /// The stores these flags name, with the ledger keys in `data_dir`.
    pub fn storage(&self, data_dir: &Path) -> Result<Storage, String> {
        match &self.database_url {
            Some(url) => postgres_storage(data_dir, url),
            None => Storage::embedded(data_dir),
        }
    }
}

#[cfg(feature = "postgres")]
fn postgres_storage(data_dir: &Path, url: &str) -> Result<Storage, String> {
    keyledger_store_postgres::open_storage(data_dir, url).map(|(storage, _)| storage)
}

#[cfg(not(feature = "postgres"))]
fn postgres_storage(_data_dir: &Path, _url: &str) -> Result<Storage, String> {
    Err("this keyledger was built without the postgres feature".into())
}
