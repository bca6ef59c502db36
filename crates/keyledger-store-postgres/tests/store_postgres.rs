//! The PostgreSQL store: the store conformance suite, the refusal of a
//! newer schema, and two stores (two "servers") racing appends on one
//! database. Each test runs on a throwaway database created on the server
//! at `KEYLEDGER_TEST_PG_URL` (default: local PostgreSQL, user postgres)
//! and dropped afterwards. PostgreSQL must be reachable: these tests fail,
//! never skip, when it is not.

use std::sync::Arc;
use std::thread;

use keyledger_core::merkle::{self, Hash, MemoryNodes};
use keyledger_ledger::conformance::{assert_log_holds, batch};
use keyledger_ledger::store::{EventStore, InstanceLog, LogNodes, SealedRecord, StoreError};
use keyledger_store_postgres::migrate::SCHEMA_VERSION;
use keyledger_store_postgres::{OpenError, PostgresStore};

const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// A database created for one test and dropped (with its connections) when
/// this guard drops.
struct TestDb {
    admin: postgres::Config,
    name: String,
}

impl TestDb {
    fn create() -> Self {
        let url = std::env::var("KEYLEDGER_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let admin: postgres::Config = url.parse().expect("KEYLEDGER_TEST_PG_URL parses");
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).expect("random");
        let name = format!("kl_test_{}", hex(&random));
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

    fn config(&self) -> postgres::Config {
        let mut config = self.admin.clone();
        config.dbname(&self.name);
        config
    }

    fn open(&self) -> PostgresStore {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fresh storage per case: a new database, opened anew by every call of
/// the returned function (which owns, and at its end drops, the database).
fn fresh() -> impl Fn() -> PostgresStore {
    let db = TestDb::create();
    move || db.open()
}

keyledger_ledger::store_conformance_tests!(fresh);

#[test]
fn a_newer_schema_is_refused() {
    let db = TestDb::create();
    drop(db.open());
    let mut client = db.config().connect(postgres::NoTls).expect("connect");
    client
        .execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .expect("pretend a newer keyledger migrated");
    let err = PostgresStore::open(db.config(), 2)
        .err()
        .expect("a newer schema is refused");
    assert!(
        matches!(err, OpenError::SchemaTooNew { found, known }
            if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer than this keyledger knows"));
    // Opening the known version again is fine (migrations are idempotent).
    client
        .execute(
            "DELETE FROM schema_version WHERE version > $1",
            &[&SCHEMA_VERSION],
        )
        .expect("back to the known version");
    let store = db.open();
    store.create_instance("after").expect("usable");
}

/// Appends batches of 1-4 records through `log` until `want` batches were
/// stored, retrying after each lost race; returns the stored batches with
/// the head each was built on.
fn append_until(
    log: &dyn InstanceLog,
    want: usize,
    salt: u64,
) -> Vec<(keyledger_ledger::store::ChainHead, Vec<SealedRecord>)> {
    let mut stored = Vec::new();
    let mut attempts = 0u64;
    while stored.len() < want {
        attempts += 1;
        assert!(attempts < 100_000, "no progress after {attempts} attempts");
        let head = log.head();
        let b = batch(log.instance(), head, 1 + (salt + attempts) % 4);
        match log.append(&b) {
            Ok(()) => stored.push((head, b)),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("append failed: {e}"),
        }
    }
    stored
}

#[test]
fn two_stores_on_one_database_make_one_chain() {
    const BATCHES: usize = 15;
    let db = TestDb::create();
    let a = db.open();
    let b = db.open();
    a.create_instance("shared").expect("create");
    // Two handles per store, as two writers per server.
    let logs: Vec<Arc<dyn InstanceLog>> = vec![
        a.open_instance("shared").expect("open a1"),
        a.open_instance("shared").expect("open a2"),
        b.open_instance("shared").expect("open b1"),
        b.open_instance("shared").expect("open b2"),
    ];
    let stored: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = logs
            .iter()
            .enumerate()
            .map(|(i, log)| s.spawn(move || append_until(log.as_ref(), BATCHES, i as u64)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("appender"))
            .collect()
    });
    let mut stored = stored;
    stored.sort_by_key(|(head, _)| head.size);
    // No gap, no overlap: acknowledged batches tile 0..n; no fork: each
    // was built on the link of the record before it.
    let mut all: Vec<SealedRecord> = Vec::new();
    for (head, records) in &stored {
        assert_eq!(
            head.size,
            all.len() as u64,
            "gap or duplicate at {}",
            head.size
        );
        if let Some(last) = all.last() {
            assert_eq!(head.link, *last.link(), "fork at {}", head.size);
        }
        all.extend(records.iter().cloned());
    }
    assert_eq!(stored.len(), 4 * BATCHES);
    let c = db.open();
    let log = c.open_instance("shared").expect("open c");
    assert_log_holds(log.as_ref(), &all);
    let leaves: Vec<Hash> = all.iter().map(|r| *r.leaf()).collect();
    let (_, frontier) = MemoryNodes::from_leaves(leaves.iter().copied()).expect("reference");
    let size = leaves.len() as u64;
    assert_eq!(
        merkle::root_at(&LogNodes(log.as_ref()), size).expect("root"),
        frontier.root()
    );
    // Every racing handle converged on the durable head.
    for l in &logs {
        l.read(0, size).expect("read through a racing handle");
        assert_eq!(l.head(), log.head());
    }
}
