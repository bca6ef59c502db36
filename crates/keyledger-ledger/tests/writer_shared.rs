//! The shared writer (a log several writers append to, as several servers
//! on one database do): one chain whoever appends, every record handed to
//! each writer's follower exactly once and in log order, events decided on
//! a view another writer's record moved are refused and not stored, and a
//! ledger-key rotation by another writer stops this one.
//!
//! The log here is the embedded store behind a lock that plays the
//! database's head-row lock ([`SharedLog`]); the PostgreSQL store runs the
//! same writers over a real database in keyledger-store-postgres's tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyledger_core::event::Envelope;
use keyledger_core::record::Record;
use keyledger_ledger::audit::AuditLog;
use keyledger_ledger::ledger::InitialAdmin;
use keyledger_ledger::ledger_key::LedgerKey;
use keyledger_ledger::sample_events::realistic_event;
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::store::{ChainHead, InstanceLog, SealedRecord, StoreError};
use keyledger_ledger::writer::{Follower, LedgerWriter, WriteError, WriterConfig};

type Ledger = keyledger_ledger::ledger::Ledger;

/// A log that says it is shared; `append_sequenced` runs under one lock,
/// as a database's head-row lock serialises it across servers.
struct SharedLog {
    inner: Arc<dyn InstanceLog>,
    lock: Mutex<()>,
}

impl InstanceLog for SharedLog {
    fn instance(&self) -> &str {
        self.inner.instance()
    }
    fn head(&self) -> ChainHead {
        self.inner.head()
    }
    fn append(&self, batch: &[SealedRecord]) -> Result<(), StoreError> {
        self.inner.append(batch)
    }
    fn read(&self, start: u64, end: u64) -> Result<Vec<Record>, StoreError> {
        self.inner.read(start, end)
    }
    fn node(&self, level: u8, index: u64) -> Result<keyledger_core::merkle::Hash, StoreError> {
        self.inner.node(level, index)
    }
    fn save_checkpoint(&self, note: &str) -> Result<(), StoreError> {
        self.inner.save_checkpoint(note)
    }
    fn latest_checkpoint(&self) -> Result<Option<String>, StoreError> {
        self.inner.latest_checkpoint()
    }
    fn shared(&self) -> bool {
        true
    }
    fn append_sequenced(
        &self,
        known: u64,
        build: &mut dyn FnMut(ChainHead, Vec<Record>) -> Result<Vec<SealedRecord>, String>,
    ) -> Result<ChainHead, StoreError> {
        let _locked = self.lock.lock().expect("lock");
        let head = self.inner.head();
        let others = self.inner.read(known, head.size)?;
        let batch = build(head, others).map_err(StoreError::Backend)?;
        self.inner.append(&batch)?;
        Ok(self.inner.head())
    }
}

/// Records what the writer hands over; its view moves with every record
/// of another writer.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(u64, bool)>>,
    view: AtomicU64,
}

impl Follower for Recorder {
    fn follow(&self, first: u64, records: &[Record], others: bool) {
        let mut seen = self.seen.lock().expect("lock");
        for (seq, record) in (first..).zip(records) {
            let envelope = Envelope::parse(&record.event).expect("stored event parses");
            assert_eq!(envelope.seq, seq, "handed at its position");
            seen.push((seq, others));
        }
        if others {
            self.view.fetch_add(1, Ordering::AcqRel);
        }
    }
    fn view(&self) -> u64 {
        self.view.load(Ordering::Acquire)
    }
}

fn config() -> WriterConfig {
    WriterConfig {
        checkpoint_interval: Duration::ZERO,
        ..WriterConfig::default()
    }
}

/// Instance `acme` (genesis plus one event) behind a [`SharedLog`], and two
/// writers on it with the instance's ledger key, each followed from the
/// log's size by its own [`Recorder`].
struct Two {
    _dir: tempfile::TempDir,
    log: Arc<SharedLog>,
    key_file: std::path::PathBuf,
    writers: [LedgerWriter; 2],
    recorders: [Arc<Recorder>; 2],
    from: u64,
}

fn two_writers() -> Two {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let admin = InitialAdmin {
        admin_id: "admin-1".into(),
        public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
    };
    let ledger =
        Ledger::create(&store, dir.path(), "acme", &admin, "op", config()).expect("create");
    ledger
        .append(realistic_event(1, 0).expect("draft"))
        .expect("append");
    let inner = ledger.log().clone();
    let key_file = ledger.keys_dir().join(format!(
        "{}.key",
        ledger.writer().current_key().key_id_hex()
    ));
    ledger.shutdown();
    let log = Arc::new(SharedLog {
        inner,
        lock: Mutex::new(()),
    });
    let from = log.head().size;
    let start = |recorder: &Arc<Recorder>| {
        let key = LedgerKey::read_file(&key_file).expect("key");
        let writer = LedgerWriter::start(log.clone(), key, config());
        assert!(writer.shared());
        assert_eq!(writer.follow(recorder.clone(), from).expect("follow"), from);
        writer
    };
    let recorders = [Arc::new(Recorder::default()), Arc::new(Recorder::default())];
    let writers = [start(&recorders[0]), start(&recorders[1])];
    Two {
        _dir: dir,
        log,
        key_file,
        writers,
        recorders,
        from,
    }
}

#[test]
fn two_writers_make_one_chain_and_each_follower_sees_every_record_once_in_order() {
    let two = two_writers();
    let acked = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..8usize {
            let (writer, acked) = (&two.writers[t % 2], &acked);
            s.spawn(move || {
                for i in 0..60u64 {
                    let r = writer
                        .append(realistic_event(1000 * t as u64 + i, t).expect("draft"))
                        .expect("append");
                    acked.lock().expect("lock").push((t % 2, r.seq));
                }
            });
        }
    });
    let size = two.log.head().size;
    assert_eq!(size, two.from + 480, "every append stored once");
    let mut seqs: Vec<u64> = acked.lock().expect("lock").iter().map(|a| a.1).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (two.from..size).collect::<Vec<_>>(),
        "no gap, no overlap"
    );
    for (w, writer) in two.writers.iter().enumerate() {
        assert_eq!(writer.catch_up().expect("catch up"), size);
        let seen = two.recorders[w].seen.lock().expect("lock").clone();
        let order: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(order, (two.from..size).collect::<Vec<_>>(), "writer {w}");
        // What it appended itself is handed over as its own; the rest as others'.
        let own: Vec<u64> = acked
            .lock()
            .expect("lock")
            .iter()
            .filter(|a| a.0 == w)
            .map(|a| a.1)
            .collect();
        for (seq, others) in seen {
            assert_eq!(others, !own.contains(&seq), "writer {w} seq {seq}");
        }
    }
    // One chain: the whole log verifies (links, signatures, tree, checkpoint).
    let [a, b] = two.writers;
    b.shutdown();
    let audit: &dyn AuditLog = &a;
    let checkpoint = audit.checkpoint().expect("checkpoint");
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("bundle");
    keyledger_ledger::export::export_bundle(audit, &checkpoint, &out).expect("export");
    let report =
        keyledger_verify::verify_bundle(&out, &Default::default(), &|_| {}).expect("verify");
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, size);
    a.shutdown();
}

#[test]
fn an_event_decided_on_a_view_another_writer_moved_is_refused_and_not_stored() {
    let two = two_writers();
    let [a, b] = &two.writers;
    let basis = two.recorders[0].view();
    // Writer B appends first: A's decision was made without it.
    b.append(realistic_event(7, 1).expect("draft"))
        .expect("append");
    let size = two.log.head().size;
    let stale = a
        .submit_on(realistic_event(8, 0).expect("draft"), Some(basis))
        .wait();
    assert_eq!(stale, Err(WriteError::Stale));
    assert_eq!(two.log.head().size, size, "nothing of it was stored");
    // A's follower has B's record: deciding again on the new view succeeds.
    let view = two.recorders[0].view();
    assert_ne!(view, basis);
    let r = a
        .submit_on(realistic_event(8, 0).expect("draft"), Some(view))
        .wait()
        .expect("decided on the current view");
    assert_eq!(r.seq, size);
    // An event without a basis (nothing decided on the projections) goes in.
    b.append(realistic_event(9, 1).expect("draft"))
        .expect("append");
    a.submit_on(realistic_event(10, 0).expect("draft"), None)
        .wait()
        .expect("no basis");
}

#[test]
fn a_ledger_key_rotation_by_another_writer_stops_this_one() {
    let two = two_writers();
    let [a, b] = &two.writers;
    let new_key = LedgerKey::generate("keyledger/acme").expect("key");
    b.rotate_key(
        new_key,
        keyledger_core::event::Actor::operator("op"),
        "rotate",
    )
    .expect("rotate");
    let size = two.log.head().size;
    let refused = a.append(realistic_event(11, 0).expect("draft"));
    match refused {
        Err(WriteError::Storage(why)) => assert!(why.contains("rotated the ledger key"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(two.log.head().size, size, "nothing of it was stored");
    assert!(two.key_file.exists());
    // The other writer, which holds the new key, goes on.
    b.append(realistic_event(12, 1).expect("draft"))
        .expect("append");
}
