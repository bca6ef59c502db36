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

mod common;

use common::TestDb;

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
