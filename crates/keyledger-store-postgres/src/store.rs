//! The store: a connection pool on one database, instance creation,
//! opening and listing.

use std::sync::Arc;
use std::time::Duration;

use keyledger_core::chain::GENESIS_PREV;
use keyledger_ledger::store::{EventStore, InstanceLog, StoreError, check_instance_name};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::OpenError;
use crate::error::{db, pool};
use crate::log::{PostgresLog, read_head};
use crate::material::PostgresMaterialStore;

/// The pool of connections every log of a store shares.
pub(crate) type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// Connections per store unless the caller says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// Instance logs in a PostgreSQL database (see the crate docs).
pub struct PostgresStore {
    pool: Pool,
    /// Where the pool connects (for [`PostgresStore::listener`]).
    config: postgres::Config,
}

impl PostgresStore {
    /// Connects to the database of `config` with a pool of at most
    /// `pool_size` connections and applies pending migrations.
    pub fn open(config: postgres::Config, pool_size: u32) -> Result<Self, OpenError> {
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        crate::migrate::apply(&mut *pool.get()?)?;
        Ok(PostgresStore { pool, config })
    }

    /// A connection of its own listening for appends to any instance of
    /// this database ([`crate::notify`]).
    pub fn listener(&self) -> Result<crate::notify::Listener, postgres::Error> {
        crate::notify::Listener::connect(&self.config)
    }

    /// Like [`open`](Self::open) with a libpq connection string or URL.
    pub fn open_url(url: &str, pool_size: u32) -> Result<Self, OpenError> {
        let config: postgres::Config = url.parse()?;
        Self::open(config, pool_size)
    }

    /// The key-material store (wrapped key versions and import tokens) in
    /// this store's database, sharing its connection pool. Its tables come
    /// with the migrations [`open`](Self::open) applied.
    pub fn material_store(&self) -> PostgresMaterialStore {
        PostgresMaterialStore::new(self.pool.clone())
    }

    /// Like [`EventStore::create_instance`], returning the concrete log.
    pub fn create_log(&self, instance: &str) -> Result<Arc<PostgresLog>, StoreError> {
        check_instance_name(instance)?;
        let mut conn = self.pool.get().map_err(pool)?;
        let inserted = conn
            .execute(
                "INSERT INTO instances (name, size, head_link) VALUES ($1, 0, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&instance, &GENESIS_PREV.as_slice()],
            )
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::InstanceExists(instance.to_string()));
        }
        let head = read_head(&mut *conn, instance)?;
        Ok(Arc::new(PostgresLog::new(
            instance.to_string(),
            self.pool.clone(),
            head,
        )))
    }

    /// Like [`EventStore::open_instance`], returning the concrete log.
    pub fn open_log(&self, instance: &str) -> Result<Arc<PostgresLog>, StoreError> {
        check_instance_name(instance)?;
        let mut conn = self.pool.get().map_err(pool)?;
        let head = read_head(&mut *conn, instance)?;
        Ok(Arc::new(PostgresLog::new(
            instance.to_string(),
            self.pool.clone(),
            head,
        )))
    }
}

impl EventStore for PostgresStore {
    fn create_instance(&self, instance: &str) -> Result<Arc<dyn InstanceLog>, StoreError> {
        Ok(self.create_log(instance)?)
    }

    fn open_instance(&self, instance: &str) -> Result<Arc<dyn InstanceLog>, StoreError> {
        Ok(self.open_log(instance)?)
    }

    fn list_instances(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.get().map_err(pool)?;
        // Byte order, as the embedded store sorts names.
        let rows = conn
            .query(
                "SELECT name FROM instances ORDER BY name COLLATE \"C\"",
                &[],
            )
            .map_err(db)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
