//! The throwaway PostgreSQL database every test of this crate runs on:
//! created on the server at `KEYLEDGER_TEST_PG_URL` (default: local
//! PostgreSQL, user postgres) and dropped, with its connections, when the
//! guard drops. PostgreSQL must be reachable: the tests fail, never skip.

use keyledger_store_postgres::PostgresStore;

const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// A database created for one test and dropped (with its connections) when
/// this guard drops.
pub struct TestDb {
    admin: postgres::Config,
    name: String,
}

impl TestDb {
    pub fn create() -> Self {
        let url = std::env::var("KEYLEDGER_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let admin: postgres::Config = url.parse().expect("KEYLEDGER_TEST_PG_URL parses");
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).expect("random");
        let name = format!("kl_test_{}", hex::encode(random));
        let mut client = admin.connect(postgres::NoTls).unwrap_or_else(|e| {
            let ci = if std::env::var("CI").is_ok_and(|v| v == "true") {
                " (CI=true: PostgreSQL must be installed and running for these tests)"
            } else {
                ""
            };
            panic!("PostgreSQL is not reachable at {url:?} (set KEYLEDGER_TEST_PG_URL){ci}: {e:?}")
        });
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        TestDb { admin, name }
    }

    pub fn config(&self) -> postgres::Config {
        let mut config = self.admin.clone();
        config.dbname(&self.name);
        config
    }

    pub fn open(&self) -> PostgresStore {
        PostgresStore::open(self.config(), 4).expect("open store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let dropped = self.admin.connect(postgres::NoTls).and_then(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
