//! Everything an instance keeps, on PostgreSQL: the [`Storage`] the server
//! and the command line open for `--database-url`.

use std::path::Path;
use std::sync::Arc;

use keyledger_kms::instance::Storage;

use crate::{DEFAULT_POOL_SIZE, PostgresStore};

/// The instance logs and the key material in the database at `url` (a
/// libpq URL or connection string; multi-host with
/// `target_session_attrs=read-write` follows a failover), the ledger keys
/// in `data_dir`; and the store itself, for a server to listen for other
/// servers' appends ([`PostgresStore::listener`]). Applies pending
/// migrations.
pub fn open_storage(data_dir: &Path, url: &str) -> Result<(Storage, Arc<PostgresStore>), String> {
    // The database first: a URL that does not parse or connect leaves no
    // directory behind.
    let store = Arc::new(
        PostgresStore::open_url(url, DEFAULT_POOL_SIZE).map_err(|e| format!("PostgreSQL: {e}"))?,
    );
    // The ledger keys' directory, private like the embedded store's.
    keyledger_ledger::data_dir::create_dir_all(data_dir)
        .map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let storage = Storage {
        data_dir: data_dir.to_path_buf(),
        events: store.clone(),
        material: Arc::new(store.material_store()),
    };
    Ok((storage, store))
}
