//! The store: a connection pool on one database (plaintext, or TLS and
//! multi-host from a libpq connection string), instance creation, opening
//! and listing.

use std::sync::Arc;
use std::time::Duration;

use keyledger_core::chain::GENESIS_PREV;
use keyledger_ledger::store::{EventStore, InstanceLog, StoreError, check_instance_name};
use r2d2_postgres::PostgresConnectionManager;

use crate::OpenError;
use crate::error::{db, pool};
use crate::log::{PostgresLog, read_head};
use crate::material::PostgresMaterialStore;
use crate::tls::{self, Connector, SslMode};

/// The connection manager of the pool: TLS as the connection string says
/// (never asked for with `sslmode=disable` or none).
pub(crate) type Manager = PostgresConnectionManager<Connector>;

/// The pool of connections every log and the material store share.
pub(crate) type Pool = r2d2::Pool<Manager>;

/// Connections per store unless the caller says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// How long taking a connection from the pool may wait (for a free one, or
/// for the database to answer again) before the operation fails, unless
/// the connection string sets `connect_timeout`.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// The checkout timeout for `config`: with `connect_timeout` set, one
/// connection attempt to every host (at least a second); else
/// [`CHECKOUT_TIMEOUT`]. While no host accepts (an outage, a failover),
/// each operation fails after this long instead of hanging.
fn checkout_timeout(config: &postgres::Config) -> Duration {
    match config.get_connect_timeout() {
        Some(t) => (*t * u32::try_from(config.get_hosts().len().max(1)).unwrap_or(u32::MAX))
            .max(Duration::from_secs(1)),
        None => CHECKOUT_TIMEOUT,
    }
}

/// Instance logs in a PostgreSQL database (see the crate docs).
pub struct PostgresStore {
    pool: Pool,
    /// Where and how the pool connects (for [`PostgresStore::listener`]).
    config: postgres::Config,
    connector: Connector,
}

impl PostgresStore {
    /// Connects to the database of `config` with a pool of at most
    /// `pool_size` connections and applies pending migrations. No TLS:
    /// a config given this way names no root certificates, so TLS settings
    /// come through [`open_url`](Self::open_url); a config that requires
    /// TLS is refused rather than connected in plaintext.
    pub fn open(mut config: postgres::Config, pool_size: u32) -> Result<Self, OpenError> {
        let connector = tls::plain(&mut config)?;
        Self::connect(config, connector, SslMode::Disable, None, pool_size)
    }

    /// Like [`open`](Self::open) with a libpq connection string or URL,
    /// including multi-host ones (`host=a,b port=p,q
    /// target_session_attrs=read-write`: connections go to whichever host
    /// is the writable primary) and TLS (`sslmode=require|verify-ca|
    /// verify-full`, `sslrootcert=<PEM file>|system`; see `docs/STORE-POSTGRES-HA.md`).
    pub fn open_url(url: &str, pool_size: u32) -> Result<Self, OpenError> {
        let target = tls::parse(url)?;
        Self::connect(
            target.config,
            target.connector,
            target.mode,
            target.root_cert.as_deref(),
            pool_size,
        )
    }

    fn connect(
        config: postgres::Config,
        connector: Connector,
        mode: SslMode,
        root_cert: Option<&str>,
        pool_size: u32,
    ) -> Result<Self, OpenError> {
        // One direct connection first: its error is the driver's own
        // (refused, TLS certificate, authentication), where the pool would
        // only report a timeout. It runs the migrations.
        let mut client = config
            .connect(connector.clone())
            .map_err(|e| connect_error(&e, mode, root_cert))?;
        crate::migrate::apply(&mut client)?;
        drop(client);
        let timeout = checkout_timeout(&config);
        let manager = PostgresConnectionManager::new(config.clone(), connector.clone());
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(timeout)
            // Every checkout first runs an empty query on the connection.
            // A pooled connection dies with its server (a crash, a restart,
            // a failover to another host); without this check the pool
            // would hand each dead one out once more and fail that
            // operation. With it, dead connections are dropped at checkout
            // and new ones are made, which for a multi-host URL with
            // target_session_attrs=read-write means to the new primary:
            // the store recovers by itself once a primary answers.
            .test_on_check_out(true)
            .build_unchecked(manager);
        Ok(PostgresStore {
            pool,
            config,
            connector,
        })
    }

    /// A connection of its own (with the pool's TLS settings) listening for
    /// appends to any instance of this database ([`crate::notify`]).
    pub fn listener(&self) -> Result<crate::notify::Listener, postgres::Error> {
        crate::notify::Listener::connect(&self.config, self.connector.clone())
    }

    /// Takes the lease of `instance`'s SIEM sink `sink` on a connection of
    /// its own, or `None` while another session holds it
    /// ([`crate::sink_lease`]).
    pub fn sink_lease(
        &self,
        instance: &str,
        sink: &str,
    ) -> Result<Option<crate::SinkLease>, String> {
        let client = self
            .config
            .connect(self.connector.clone())
            .map_err(|e| crate::error::describe(&e))?;
        crate::SinkLease::take(client, instance, sink)
    }

    /// The stored cursor of `instance`'s sink `sink`, whoever holds its
    /// lease (0 when none was stored).
    pub fn sink_cursor(&self, instance: &str, sink: &str) -> Result<u64, String> {
        let mut conn = self.pool.get().map_err(|e| e.to_string())?;
        crate::sink_lease::read(&mut conn, instance, sink)
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

/// Why the first connection failed: a refused server certificate named as
/// such (with the mode and the roots it was checked against), else the
/// driver's error.
fn connect_error(e: &postgres::Error, mode: SslMode, root_cert: Option<&str>) -> OpenError {
    match tls::certificate_error(e) {
        Some(cert) => OpenError::Tls(format!(
            "the server's certificate was refused ({cert}) with sslmode={mode}, roots from {}: {}",
            root_cert.unwrap_or("the system store"),
            crate::error::describe(e)
        )),
        None => OpenError::Database(crate::error::describe(e)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkout_waits_one_connect_timeout_per_host() {
        let timeout = |url: &str| checkout_timeout(&url.parse().expect("parses"));
        assert_eq!(timeout("host=a"), CHECKOUT_TIMEOUT);
        assert_eq!(
            timeout("host=a,b port=1,2 connect_timeout=2"),
            Duration::from_secs(4)
        );
        assert_eq!(
            timeout("host=a connect_timeout=0"),
            CHECKOUT_TIMEOUT,
            "0 means no connect timeout, as in libpq"
        );
    }
}
