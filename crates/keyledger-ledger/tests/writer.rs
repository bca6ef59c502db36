//! The ledger writer: group commit under concurrency, fail-closed appends
//! (storage and signing failures), refused events leave nothing behind, key
//! rotation, reopen, checkpoints.

mod common;

use common::flaky_log::FlakyLog;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use keyledger_core::event::{Actor, EventDraft, EventError, KeyEnabled, PayloadError};
use keyledger_core::merkle;
use keyledger_ledger::audit::AuditLog;
use keyledger_ledger::ledger::InitialAdmin;
use keyledger_ledger::ledger_key::LedgerKey;
use keyledger_ledger::sample_events::realistic_event;
use keyledger_ledger::signer::{LedgerSigner, SignError};
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::store::{EventStore, InstanceLog, LogNodes};
use keyledger_ledger::writer::{LedgerWriter, WriteError, WriterConfig, origin_for};

/// A ledger whose keys are key files (no signing device).
type Ledger = keyledger_ledger::ledger::Ledger;

fn admin() -> InitialAdmin {
    InitialAdmin {
        admin_id: "admin-1".into(),
        public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
    }
}

fn config() -> WriterConfig {
    WriterConfig {
        checkpoint_interval: Duration::ZERO,
        ..WriterConfig::default()
    }
}

/// Creates instance `acme` under `dir` with `events` more events, then
/// closes it: its log (to run a writer on directly) and its ledger key file.
fn closed_instance(
    dir: &std::path::Path,
    events: u64,
) -> (Arc<dyn InstanceLog>, std::path::PathBuf) {
    let store = EmbeddedStore::open(dir).expect("store");
    let ledger = Ledger::create(&store, dir, "acme", &admin(), "op", config()).expect("create");
    for i in 0..events {
        ledger
            .append(realistic_event(1 + i, 0).expect("d"))
            .expect("append");
    }
    let log = ledger.log().clone();
    let key_file = ledger.keys_dir().join(format!(
        "{}.key",
        ledger.writer().current_key().key_id_hex()
    ));
    ledger.shutdown();
    (log, key_file)
}

fn verify_log(ledger: &Ledger) -> keyledger_core::verify::Report {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("b");
    let audit: &dyn AuditLog = ledger.writer();
    let checkpoint = audit.checkpoint().expect("checkpoint");
    keyledger_ledger::export::export_bundle(audit, &checkpoint, &out).expect("export");
    common::events::Schemas::load().check_all(&common::fixture::read_records(&out));
    keyledger_verify::verify_bundle(&out, &Default::default(), &|_| {}).expect("verify")
}

#[test]
fn concurrent_appends_are_group_committed_gap_free_and_verify() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let ledger =
        Ledger::create(&store, dir.path(), "acme", &admin(), "op", config()).expect("create");
    let mut seqs = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..32 {
            let (ledger, seqs) = (&ledger, &seqs);
            s.spawn(move || {
                for i in 0..100u64 {
                    let r = ledger
                        .append(realistic_event(t as u64 * 1000 + i, t).expect("draft"))
                        .expect("append");
                    seqs.lock().expect("lock").push(r.seq);
                }
            });
        }
    });
    let mut seqs = std::mem::take(seqs.get_mut().expect("lock"));
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=3200).collect::<Vec<u64>>(),
        "every caller got a distinct seq, gap-free"
    );
    let stats = ledger.writer().stats();
    let batches = stats.batches.load(Ordering::Relaxed);
    assert!(
        batches < 3201,
        "32 concurrent appenders must share fsyncs ({batches} batches)"
    );
    let report = verify_log(&ledger);
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, 3201);
}

#[test]
fn when_the_log_cannot_be_written_callers_get_an_error_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tmp");
    let (log, key_file) = closed_instance(dir.path(), 1);

    let flaky = Arc::new(FlakyLog {
        inner: log,
        broken: AtomicBool::new(true),
    });
    let writer = LedgerWriter::start(
        flaky.clone(),
        LedgerKey::read_file(&key_file).expect("key"),
        config(),
    );
    let before = flaky.head();
    let failures: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let writer = &writer;
                s.spawn(move || writer.append(realistic_event(100 + t, t as usize).expect("d")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    for f in &failures {
        assert!(matches!(f, Err(WriteError::Storage(_))), "{f:?}");
    }
    assert_eq!(flaky.head(), before, "nothing was stored");

    flaky.broken.store(false, Ordering::SeqCst);
    let r = writer
        .append(realistic_event(200, 0).expect("d"))
        .expect("append after repair");
    assert_eq!(r.seq, before.size, "appends resume at the next seq");
    let records = flaky.read(0, flaky.head().size).expect("read");
    let env =
        keyledger_core::event::Envelope::parse(&records[r.seq as usize].event).expect("parse");
    assert_eq!(
        env.prev,
        keyledger_core::chain::to_hex(&before.link),
        "the chain continues from the durable head"
    );
    writer.shutdown();
}

/// A real ledger key that gives `budget` signatures, then fails with
/// `refusal`, as an HSM holding the key does when the token is unreachable.
/// `in_process` is what it reports as [`LedgerSigner::signs_in_process`];
/// with `first_delay`, its first signature takes that long, so that what is
/// submitted meanwhile reaches the sequencer as one batch.
struct BudgetSigner {
    key: LedgerKey,
    budget: AtomicUsize,
    refusal: &'static str,
    in_process: bool,
    first_delay: Duration,
    started: AtomicBool,
}

impl BudgetSigner {
    fn new(key_file: &std::path::Path, budget: usize, refusal: &'static str) -> Self {
        BudgetSigner {
            key: LedgerKey::read_file(key_file).expect("key"),
            budget: AtomicUsize::new(budget),
            refusal,
            in_process: false,
            first_delay: Duration::ZERO,
            started: AtomicBool::new(false),
        }
    }
}

impl LedgerSigner for BudgetSigner {
    fn name(&self) -> &str {
        self.key.name()
    }
    fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        if !self.started.swap(true, Ordering::SeqCst) {
            std::thread::sleep(self.first_delay);
        }
        let left = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1));
        if left.is_err() {
            return Err(SignError::Device(self.refusal.into()));
        }
        LedgerSigner::sign_message(&self.key, message)
    }
    fn location(&self) -> String {
        "budget".into()
    }
    fn signs_in_process(&self) -> bool {
        self.in_process
    }
}

#[test]
fn when_the_ledger_key_cannot_sign_callers_get_an_error_and_the_chain_continues() {
    let dir = tempfile::tempdir().expect("tmp");
    let (log, key_file) = closed_instance(dir.path(), 1);
    let old = LedgerKey::read_file(&key_file).expect("key");

    let signer = Arc::new(BudgetSigner::new(&key_file, 0, "token unreachable"));
    let writer = LedgerWriter::start(
        log.clone(),
        signer.clone() as Arc<dyn LedgerSigner>,
        config(),
    );
    let before = log.head();
    let failures: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let writer = &writer;
                s.spawn(move || writer.append(realistic_event(100 + t, t as usize).expect("d")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    for f in &failures {
        match f {
            Err(WriteError::Signing(m)) => assert!(m.contains("token unreachable"), "{m}"),
            other => panic!("expected a signing failure, got {other:?}"),
        }
    }
    let next = LedgerKey::generate(&origin_for("acme")).expect("key");
    let next_id = next.key_id_hex();
    let refused = writer.rotate_key(next, Actor::operator("op"), "rot");
    assert!(
        matches!(refused, Err(WriteError::Signing(_))),
        "{refused:?}"
    );
    assert_eq!(writer.current_key().key_id_hex(), old.key_id_hex());
    assert!(matches!(writer.checkpoint(), Err(WriteError::Signing(_))));
    assert_eq!(log.head(), before, "nothing was stored");

    signer.budget.store(usize::MAX, Ordering::SeqCst);
    let r = writer
        .append(realistic_event(200, 0).expect("d"))
        .expect("append once the key signs again");
    assert_eq!(r.seq, before.size, "appends resume at the next seq");
    let env = keyledger_core::event::Envelope::parse(&r.event).expect("parse");
    assert_eq!(env.prev, keyledger_core::chain::to_hex(&before.link));
    assert_eq!(
        env.ledger_key,
        old.key_id_hex(),
        "the failed rotation never happened"
    );
    let next = LedgerKey::generate(&origin_for("acme")).expect("key");
    writer
        .rotate_key(next, Actor::operator("op"), "rot")
        .expect("rotate");
    assert_ne!(writer.current_key().key_id_hex(), next_id);
    writer
        .append(realistic_event(201, 0).expect("d"))
        .expect("append under the new key");
    let checkpoint = AuditLog::checkpoint(&writer).expect("checkpoint");
    let size = checkpoint.size;
    assert_eq!(
        size,
        log.head().size,
        "the checkpoint covers the durable log"
    );
    let out = dir.path().join("bundle");
    keyledger_ledger::export::export_bundle(&writer, &checkpoint, &out).expect("export");
    let report =
        keyledger_verify::verify_bundle(&out, &Default::default(), &|_| {}).expect("verify");
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!((report.records, report.key_rotations), (size, 1));
    writer.shutdown();
}

#[test]
fn a_batch_handed_over_in_chunks_keeps_what_was_signed_before_a_signing_failure() {
    let dir = tempfile::tempdir().expect("tmp");
    let (log, key_file) = closed_instance(dir.path(), 0);
    // 1 signature for the lone first record, 8 for the first chunk of the
    // next batch, 3 into its second chunk: that chunk fails as a whole.
    let signer = Arc::new(BudgetSigner {
        in_process: true,
        first_delay: Duration::from_millis(300),
        ..BudgetSigner::new(&key_file, 12, "signing budget spent")
    });
    let no_checkpoints = WriterConfig {
        checkpoint_interval: Duration::from_secs(3600),
        handoff_chunk: Some(8),
        ..WriterConfig::default()
    };
    let writer = LedgerWriter::start(
        log.clone(),
        signer.clone() as Arc<dyn LedgerSigner>,
        no_checkpoints,
    );
    let before = log.head();
    let first = writer.submit(realistic_event(1, 0).expect("d"));
    while !signer.started.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let rest: Vec<_> = (0..39)
        .map(|i| writer.submit(realistic_event(2 + i, i as usize).expect("d")))
        .collect();
    let results: Vec<_> = std::iter::once(first)
        .chain(rest)
        .map(|p| p.wait())
        .collect();
    let kept = results.iter().take_while(|r| r.is_ok()).count();
    assert_eq!(kept, 9, "the lone record and the first chunk of 8");
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(receipt) => assert_eq!(receipt.seq, before.size + i as u64),
            Err(WriteError::Signing(m)) => {
                assert!(i >= kept && m.contains("budget spent"), "{i}: {m}")
            }
            Err(other) => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(
        log.head().size,
        before.size + 9,
        "exactly the answered records"
    );
    let records = log.read(before.size, before.size + 9).expect("read");
    let mut prev = before.link;
    for r in &records {
        let env = keyledger_core::event::Envelope::parse(&r.event).expect("parse");
        assert_eq!(env.prev, keyledger_core::chain::to_hex(&prev));
        assert!(keyledger_ledger::ledger_key::verify_record(
            &signer.verifying_key(),
            &r.link(),
            &r.signature
        ));
        prev = r.link();
    }
    // Once the key signs again, the chain continues from the last record kept.
    signer.budget.store(usize::MAX, Ordering::SeqCst);
    let next = writer
        .append(realistic_event(100, 0).expect("d"))
        .expect("append");
    assert_eq!(next.seq, before.size + 9);
    let env = keyledger_core::event::Envelope::parse(&next.event).expect("parse");
    assert_eq!(env.prev, keyledger_core::chain::to_hex(&prev));
    writer.shutdown();
}

#[test]
fn oversized_and_malformed_events_are_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let ledger =
        Ledger::create(&store, dir.path(), "acme", &admin(), "op", config()).expect("create");
    let head = ledger.log().head();

    let huge = KeyEnabled {
        key_id: "k".repeat(70_000),
    };
    let err = EventDraft::new(Actor::system(), "c", &huge).expect_err("too large");
    assert_eq!(
        err.to_string(),
        "event is 70013 bytes, more than the 65536 allowed"
    );

    // Nearly at the limit: the payload fits but the whole envelope does not.
    let near = KeyEnabled {
        key_id: "k".repeat(65_500),
    };
    let draft = EventDraft::new(Actor::system(), "c", &near).expect("payload fits");
    let err = ledger.append(draft).expect_err("envelope too large");
    assert!(
        matches!(err, WriteError::Invalid(EventError::TooLarge { .. })),
        "{err}"
    );

    let malformed = [
        ("key.enabled", 1, "{\"key_id\":", "payload does not match"),
        (
            "key.enabled",
            1,
            "{\"key_id\":\"k\",\"extra\":1}",
            "unknown field",
        ),
        ("key.enabled", 1, "[1,2]", "payload does not match"),
        ("key.enabled", 2, "{\"key_id\":\"k\"}", "unknown event type"),
        ("key.exploded", 1, "{}", "unknown event type"),
    ];
    for (ty, version, json, expected) in malformed {
        let err = EventDraft::from_json(ty, version, Actor::system(), "c", json).expect_err(json);
        assert!(err.to_string().contains(expected), "{json}: {err}");
        assert!(matches!(
            err,
            EventError::Payload(PayloadError::Invalid(_) | PayloadError::UnknownType { .. })
        ));
    }
    let good = EventDraft::from_json(
        "key.enabled",
        1,
        Actor::system(),
        "c",
        "{ \"key_id\" : \"k\" }",
    )
    .expect("valid");
    assert_eq!(good.payload.get(), "{\"key_id\":\"k\"}");
    assert_eq!(
        ledger.log().head(),
        head,
        "nothing was appended by refused events"
    );
    ledger.append(good).expect("the writer still works");
}

#[test]
fn key_rotation_survives_reopen_and_verifies() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let ledger =
        Ledger::create(&store, dir.path(), "acme", &admin(), "op", config()).expect("create");
    let old = ledger.writer().current_key().key_id_hex();
    for n in 0..10 {
        ledger
            .append(realistic_event(n, 0).expect("d"))
            .expect("append");
    }
    let rotation = ledger
        .rotate_key(Actor::operator("op"), "rot")
        .expect("rotate");
    let new = ledger.writer().current_key().key_id_hex();
    assert_ne!(old, new);
    ledger
        .append(realistic_event(11, 0).expect("d"))
        .expect("append");
    ledger.shutdown();
    drop(store);

    let store = EmbeddedStore::open(dir.path()).expect("store");
    let ledger = Ledger::open(&store, dir.path(), "acme", config()).expect("reopen");
    assert_eq!(
        ledger.writer().current_key().key_id_hex(),
        new,
        "reopen picks the key in force"
    );
    let next = ledger
        .append(realistic_event(12, 0).expect("d"))
        .expect("append");
    assert_eq!(next.seq, rotation.seq + 2);
    let report = verify_log(&ledger);
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.key_rotations, 1);
    // A second rotation straight after reopening, right at the head.
    ledger
        .rotate_key(Actor::operator("op"), "rot2")
        .expect("rotate");
    ledger.shutdown();
    let ledger =
        Ledger::open(&store, dir.path(), "acme", config()).expect("reopen at a rotation head");
    let report = verify_log(&ledger);
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.key_rotations, 2);
}

#[test]
fn successive_checkpoints_are_consistent() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let ledger =
        Ledger::create(&store, dir.path(), "acme", &admin(), "op", config()).expect("create");
    let vkey = ledger.writer().current_key().note_verifier();
    let mut notes = Vec::new();
    for round in 0..5u64 {
        for n in 0..(round * 7 + 3) {
            ledger
                .append(realistic_event(round * 100 + n, 0).expect("d"))
                .expect("append");
        }
        notes.push(ledger.writer().checkpoint().expect("checkpoint"));
    }
    let checkpoints: Vec<_> = notes
        .iter()
        .map(|n| {
            keyledger_core::checkpoint::parse_and_verify(n.as_bytes(), std::slice::from_ref(&vkey))
                .expect("signed")
        })
        .collect();
    let nodes = LogNodes(ledger.log().as_ref());
    for (i, a) in checkpoints.iter().enumerate() {
        for b in &checkpoints[i..] {
            let proof = merkle::consistency_proof(&nodes, a.size, b.size).expect("proof");
            merkle::verify_consistency(a.size, b.size, &proof, &a.root, &b.root)
                .expect("consistent");
        }
    }
    let latest = ledger
        .log()
        .latest_checkpoint()
        .expect("read")
        .expect("saved");
    assert_eq!(latest, *notes.last().expect("notes"));
}

#[test]
fn creating_an_existing_instance_is_refused_and_leaves_it_intact() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let ledger =
        Ledger::create(&store, dir.path(), "acme", &admin(), "op", config()).expect("create");
    let head = ledger.log().head();
    ledger.shutdown();
    let err = Ledger::create(&store, dir.path(), "acme", &admin(), "op", config())
        .err()
        .expect("refused");
    assert_eq!(err.to_string(), "instance \"acme\" already exists");
    let ledger = Ledger::open(&store, dir.path(), "acme", config()).expect("open");
    assert_eq!(ledger.log().head(), head);
    let err = Ledger::create(&store, dir.path(), "Bad Name", &admin(), "op", config())
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .starts_with("invalid instance name \"Bad Name\""),
        "{err}"
    );
    assert!(store.list_instances().expect("list") == vec!["acme".to_string()]);
}

type AppendHook = Box<dyn Fn(&[keyledger_ledger::store::SealedRecord]) + Send + Sync>;
type SaveHook = Box<dyn Fn(&str) + Send + Sync>;

/// A log that runs a hook before each append and before each checkpoint
/// save, then does what the log it wraps does.
struct HookedLog {
    inner: Arc<dyn InstanceLog>,
    before_append: AppendHook,
    before_save: SaveHook,
}

impl HookedLog {
    fn new(inner: Arc<dyn InstanceLog>) -> Self {
        HookedLog {
            inner,
            before_append: Box::new(|_| {}),
            before_save: Box::new(|_| {}),
        }
    }
}

impl InstanceLog for HookedLog {
    fn instance(&self) -> &str {
        self.inner.instance()
    }
    fn head(&self) -> keyledger_ledger::store::ChainHead {
        self.inner.head()
    }
    fn append(
        &self,
        batch: &[keyledger_ledger::store::SealedRecord],
    ) -> Result<(), keyledger_ledger::store::StoreError> {
        (self.before_append)(batch);
        self.inner.append(batch)
    }
    fn read(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<keyledger_core::record::Record>, keyledger_ledger::store::StoreError> {
        self.inner.read(start, end)
    }
    fn node(
        &self,
        level: u8,
        index: u64,
    ) -> Result<merkle::Hash, keyledger_ledger::store::StoreError> {
        self.inner.node(level, index)
    }
    fn save_checkpoint(&self, note: &str) -> Result<(), keyledger_ledger::store::StoreError> {
        (self.before_save)(note);
        self.inner.save_checkpoint(note)
    }
    fn latest_checkpoint(&self) -> Result<Option<String>, keyledger_ledger::store::StoreError> {
        self.inner.latest_checkpoint()
    }
}

#[test]
fn batches_signed_during_an_append_are_committed_together_in_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let (log, key_file) = closed_instance(dir.path(), 0);
    // Appends take 40 ms, and each records the event times of its records
    // (the sequencer gives one time to each batch it signs, so distinct
    // times in one append mean merged batches).
    let appends = Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let slow = Arc::new(HookedLog {
        before_append: Box::new({
            let appends = appends.clone();
            move |batch| {
                std::thread::sleep(Duration::from_millis(40));
                let times = batch
                    .iter()
                    .map(|r| {
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.record().event).expect("json");
                        v["time"].as_str().expect("time").to_string()
                    })
                    .collect();
                appends.lock().expect("lock").push(times);
            }
        }),
        ..HookedLog::new(log)
    });
    // A clock that moves 1 µs per call: every sequencer batch gets its own
    // time. It starts after the log's genesis (the writer never stamps an
    // event earlier than the log's last one).
    let ticks = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let start = chrono::Utc::now().timestamp_micros() + 1_000_000;
    let clock: keyledger_ledger::writer::Clock = Arc::new(move || {
        chrono::DateTime::from_timestamp_micros(start + ticks.fetch_add(1, Ordering::SeqCst))
            .expect("time")
    });
    let writer = LedgerWriter::start(
        slow.clone(),
        LedgerKey::read_file(&key_file).expect("key"),
        WriterConfig { clock, ..config() },
    );
    let start = slow.head().size;
    // One event every 2 ms: each is signed on its own while appends take 40 ms.
    let pending: Vec<_> = (0..60u64)
        .map(|i| {
            let p = writer.submit(realistic_event(500 + i, 0).expect("draft"));
            std::thread::sleep(Duration::from_millis(2));
            p
        })
        .collect();
    let seqs: Vec<u64> = pending
        .into_iter()
        .map(|p| p.wait().expect("durable").seq)
        .collect();
    assert_eq!(
        seqs,
        (start..start + 60).collect::<Vec<u64>>(),
        "answered in order, gap-free"
    );
    let appends = appends.lock().expect("lock").clone();
    assert!(
        appends
            .iter()
            .all(|a| !a.is_empty() && a.len() <= keyledger_ledger::writer::MAX_BATCH)
    );
    let merged = appends
        .iter()
        .filter(|times| times.windows(2).any(|w| w[0] != w[1]))
        .count();
    assert!(
        merged >= 1 && appends.len() < 30,
        "batches signed during an append share the next one: {} appends, {merged} merged",
        appends.len()
    );
    for times in &appends {
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "times never go back"
        );
    }
    assert_eq!(
        slow.head().size,
        start + 60,
        "every answered event is in the log"
    );
    writer.shutdown();
}

#[test]
fn a_slow_checkpoint_save_never_holds_up_appends_and_shutdown_checkpoints_the_rest() {
    let dir = tempfile::tempdir().expect("tmp");
    let (log, key_file) = closed_instance(dir.path(), 2);
    let (open_gate, gate) = std::sync::mpsc::channel();
    let (saving, saves) = std::sync::mpsc::sync_channel(16);
    // Each checkpoint save reports its size, then waits for the gate.
    let gate = std::sync::Mutex::new(gate);
    let gated = Arc::new(HookedLog {
        before_save: Box::new(move |note| {
            let size = keyledger_core::checkpoint::parse_unverified(note.as_bytes())
                .expect("note")
                .size;
            let _ = saving.send(size);
            let _ = gate.lock().expect("gate").recv();
        }),
        ..HookedLog::new(log.clone())
    });
    let key = LedgerKey::read_file(&key_file).expect("key");
    let vkey = key.note_verifier();
    let writer = LedgerWriter::start(gated.clone(), key, config());
    let start = gated.head().size;
    writer
        .append(realistic_event(900, 0).expect("draft"))
        .expect("durable");
    // A checkpoint is due after every batch (interval zero): its save has
    // started and is now stuck behind the gate.
    let first = saves
        .recv_timeout(Duration::from_secs(30))
        .expect("a checkpoint save started");
    assert_eq!(first, start + 1);
    // Appends are still answered while that save waits (on another thread,
    // so that a writer held up by the save fails this test, not hangs it).
    let (done, answered) = std::sync::mpsc::channel();
    let appender = writer.clone();
    std::thread::spawn(move || {
        let seqs: Vec<u64> = (0..20u64)
            .map(|i| {
                appender
                    .append(realistic_event(901 + i, 0).expect("draft"))
                    .expect("durable")
                    .seq
            })
            .collect();
        let _ = done.send(seqs);
    });
    let seqs = answered
        .recv_timeout(Duration::from_secs(60))
        .expect("appends answered while a checkpoint save waits");
    assert_eq!(seqs, (start + 1..start + 21).collect::<Vec<u64>>());
    assert!(
        saves.try_recv().is_err(),
        "one checkpoint at a time: no second save started while the first waits"
    );
    // Let every save through; shutdown issues a final checkpoint of the
    // whole log, signed by the key in force.
    let opener = std::thread::spawn(move || {
        while open_gate.send(()).is_ok() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    writer.shutdown();
    drop(gated);
    let note = log.latest_checkpoint().expect("read").expect("saved");
    let saved =
        keyledger_core::checkpoint::parse_and_verify(note.as_bytes(), std::slice::from_ref(&vkey))
            .expect("signed by the ledger key");
    assert_eq!(
        saved.size,
        start + 21,
        "the final checkpoint covers every event"
    );
    assert_eq!(log.head().size, start + 21);
    let _ = opener.join();
}

#[test]
fn the_audit_view_answers_a_checkpoint_of_the_whole_durable_log_and_the_export_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let ledger =
        Ledger::create(&store, dir.path(), "acme", &admin(), "op", config()).expect("create");
    for i in 0..40 {
        ledger
            .append(realistic_event(1 + i, 0).expect("d"))
            .expect("append");
    }
    let audit: &dyn AuditLog = ledger.writer();
    let stale = audit.checkpoint().expect("checkpoint");
    assert_eq!(stale.size, audit.size(), "covers the durable log");
    // A stored checkpoint the log has outgrown is not answered: a new one
    // is signed for the new head.
    for i in 40..45 {
        ledger
            .append(realistic_event(1 + i, 0).expect("d"))
            .expect("append");
    }
    ledger.log().save_checkpoint(&stale.note).expect("save");
    let fresh = audit.checkpoint().expect("checkpoint");
    assert_eq!(fresh.size, audit.size());
    assert!(fresh.size > stale.size);
    let verifier: keyledger_core::checkpoint::NoteVerifierKey =
        audit.verifier_key().parse().expect("verifier key");
    let parsed = keyledger_core::checkpoint::parse_and_verify(&fresh.note, &[verifier])
        .expect("signed by the key in force");
    assert_eq!(parsed.size, fresh.size);
    // Once stored it is answered again as it is.
    assert_eq!(audit.checkpoint().expect("again"), fresh);

    // The frames the stream sends are the bytes export writes.
    let out = dir.path().join("bundle");
    let manifest = keyledger_ledger::export::export_bundle(audit, &fresh, &out).expect("export");
    assert_eq!(
        manifest,
        keyledger_ledger::audit::manifest(audit, fresh.size)
    );
    let mut frames = Vec::new();
    for (start, end) in [(0, 17), (17, fresh.size)] {
        keyledger_ledger::audit::write_frames(audit, start, end, &mut frames).expect("frames");
    }
    assert_eq!(
        frames,
        std::fs::read(out.join("records.bin")).expect("records.bin")
    );
    ledger.shutdown();
}

/// The `time` of a record's event.
fn event_time(record: &keyledger_core::record::Record) -> String {
    keyledger_core::event::Envelope::parse(&record.event)
        .expect("event")
        .time
}

#[test]
fn a_restarted_writer_never_stamps_an_event_earlier_than_the_log_s_last() {
    let dir = tempfile::tempdir().expect("tmp");
    let (log, key_file) = closed_instance(dir.path(), 3);
    let size = log.head().size;
    let last = event_time(&log.read(size - 1, size).expect("read")[0]);
    // The clock went back by years while the service was down.
    let clock: keyledger_ledger::writer::Clock =
        Arc::new(|| chrono::DateTime::from_timestamp_micros(1_000_000_000_000_000).expect("time"));
    let writer = LedgerWriter::start(
        log.clone(),
        LedgerKey::read_file(&key_file).expect("key"),
        WriterConfig { clock, ..config() },
    );
    for i in 0..3 {
        writer
            .submit(realistic_event(100 + i, 0).expect("draft"))
            .wait()
            .expect("durable");
    }
    // The verifier agrees the log's time never goes back.
    let out = dir.path().join("bundle");
    let audit: &dyn AuditLog = &writer;
    let checkpoint = audit.checkpoint().expect("checkpoint");
    keyledger_ledger::export::export_bundle(audit, &checkpoint, &out).expect("export");
    writer.shutdown();
    let records = log.read(size, size + 3).expect("read");
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(event_time(record), last, "clamped to the last stored time");
    }
    let report =
        keyledger_verify::verify_bundle(&out, &Default::default(), &|_| {}).expect("verify");
    assert!(report.ok(), "{:?}", report.failure);
}
