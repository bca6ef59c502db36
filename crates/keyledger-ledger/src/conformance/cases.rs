//! The cases of the suite, one function each, every one given an `open`
//! function on fresh storage (see the [module docs](super)).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::ledger_key::LedgerKey;
use crate::store::{ChainHead, InstanceLog, Linked, LogNodes, SealedRecord, StoreError};
use crate::writer::{LedgerWriter, WriterConfig, origin_for};
use keyledger_core::chain::{self, GENESIS_PREV};
use keyledger_core::event::{Actor, EventDraft, KeyEnabled};
use keyledger_core::merkle::{self, Hash, MemoryNodes};
use keyledger_core::record::{MAX_EVENT_BYTES, Record};

use super::Open;
use super::helpers::*;

pub fn check_instances_create_open_list(open: Open<'_>) {
    let store = open();
    assert_eq!(store.list_instances().expect("list"), Vec::<String>::new());
    for name in ["beta-1", "alpha", "0zeta_x"] {
        let log = store.create_instance(name).expect("create");
        assert_eq!(log.instance(), name);
        assert_eq!(
            log.head(),
            ChainHead {
                size: 0,
                link: GENESIS_PREV
            }
        );
        assert_eq!(log.read(0, 0).expect("empty read"), Vec::<Record>::new());
        assert_eq!(log.latest_checkpoint().expect("checkpoint"), None);
    }
    assert_eq!(
        store.list_instances().expect("list"),
        ["0zeta_x", "alpha", "beta-1"]
    );
    assert!(matches!(
        store.create_instance("alpha"),
        Err(StoreError::InstanceExists(n)) if n == "alpha"
    ));
    assert!(matches!(
        store.open_instance("gamma"),
        Err(StoreError::UnknownInstance(n)) if n == "gamma"
    ));
    let long = "a".repeat(65);
    for bad in [
        "",
        "Alpha",
        "-lead",
        "_lead",
        "a/b",
        "..",
        ".",
        "a b",
        "é",
        long.as_str(),
    ] {
        assert!(
            matches!(
                store.create_instance(bad),
                Err(StoreError::InvalidInstanceName(_))
            ),
            "create {bad:?}"
        );
        assert!(
            matches!(
                store.open_instance(bad),
                Err(StoreError::InvalidInstanceName(_))
            ),
            "open {bad:?}"
        );
    }
    store
        .create_instance(&"a".repeat(64))
        .expect("64 characters is fine");
    drop(store);
    let store = open();
    assert_eq!(store.list_instances().expect("list").len(), 4);
    let log = store.open_instance("alpha").expect("open after reopen");
    assert_eq!(log.head().size, 0);
}

pub fn check_append_and_read_back(open: Open<'_>) {
    let store = open();
    let log = store.create_instance("app").expect("create");
    let mut all = Vec::new();
    for n in [1, 3, 7, 1, 20, 2] {
        let b = batch("app", log.head(), n);
        log.append(&b).expect("append");
        all.extend(b);
        assert_log_holds(log.as_ref(), &all);
    }
    let n = all.len() as u64;
    let want = records(&all);
    for a in 0..=n {
        for b in a..=n {
            assert_eq!(log.read(a, b).expect("read"), want[a as usize..b as usize]);
        }
    }
    // A maximal event is stored byte-exact too.
    let head = log.head();
    let mut big = sealed("app", head.size, &head.link, 0);
    let filler = MAX_EVENT_BYTES - big.record().event.len();
    big = sealed("app", head.size, &head.link, filler);
    assert_eq!(big.record().event.len(), MAX_EVENT_BYTES);
    log.append(std::slice::from_ref(&big))
        .expect("append max-size event");
    all.push(big);
    assert_log_holds(log.as_ref(), &all);
}

pub fn check_bad_batches_write_nothing(open: Open<'_>) {
    let store = open();
    let log = store.create_instance("bad").expect("create");
    let all = append_batches(log.as_ref(), &[4]);
    let head = log.head();
    // Wrong start: ahead, behind, and at 0 again.
    for start in [head.size + 1, head.size - 1, 0] {
        let fake = ChainHead {
            size: start,
            link: head.link,
        };
        let b = batch("bad", fake, 2);
        assert!(
            matches!(log.append(&b), Err(StoreError::Conflict { batch_start, size })
                if batch_start == start && size == head.size),
            "start {start}"
        );
    }
    // A gap inside the batch.
    let mut b = batch("bad", head, 3);
    b.remove(1);
    assert!(matches!(
        log.append(&b),
        Err(StoreError::NonContiguous { .. })
    ));
    // A duplicated seq inside the batch.
    let mut b = batch("bad", head, 2);
    b[1] = b[0].clone();
    assert!(matches!(
        log.append(&b),
        Err(StoreError::NonContiguous { .. })
    ));
    // An oversized record at the end of an otherwise fine batch.
    let mut b = batch("bad", head, 2);
    let last = &b[0];
    b[1] = sealed("bad", head.size + 1, last.link(), MAX_EVENT_BYTES);
    assert!(b[1].record().event.len() > MAX_EVENT_BYTES);
    assert!(matches!(
        log.append(&b),
        Err(StoreError::InvalidRecord { seq, .. }) if seq == head.size + 1
    ));
    // An empty batch is a no-op.
    log.append(&[]).expect("empty batch");
    assert_log_holds(log.as_ref(), &all);
    drop(log);
    drop(store);
    let store = open();
    let log = store.open_instance("bad").expect("reopen");
    assert_log_holds(log.as_ref(), &all);
    let mut all = all;
    all.extend(append_batches(log.as_ref(), &[2]));
    assert_log_holds(log.as_ref(), &all);
}

pub fn check_out_of_range(open: Open<'_>) {
    let store = open();
    let log = store.create_instance("range").expect("create");
    assert!(matches!(
        log.read(0, 1),
        Err(StoreError::OutOfRange {
            start: 0,
            end: 1,
            size: 0
        })
    ));
    assert!(log.node(0, 0).is_err());
    append_batches(log.as_ref(), &[5]);
    for (a, b) in [(0, 6), (5, 6), (6, 6), (6, 7), (3, 2), (u64::MAX, u64::MAX)] {
        assert!(
            matches!(log.read(a, b), Err(StoreError::OutOfRange { size: 5, .. })),
            "read({a}, {b})"
        );
    }
    assert!(log.node(0, 4).is_ok());
    for (level, index) in [
        (0, 5),
        (1, 2),
        (2, 1),
        (3, 0),
        (63, 0),
        (64, 0),
        (255, u64::MAX),
    ] {
        assert!(log.node(level, index).is_err(), "node({level}, {index})");
    }
}

pub fn check_tree_and_proofs(open: Open<'_>) {
    let store = open();
    let log = store.create_instance("tree").expect("create");
    assert_tree_matches(log.as_ref(), &[]);
    let mut leaves = Vec::new();
    for n in [1, 1, 2, 5, 8, 3, 13] {
        let b = batch("tree", log.head(), n);
        log.append(&b).expect("append");
        leaves.extend(b.iter().map(|r| *r.leaf()));
        assert_tree_matches(log.as_ref(), &leaves);
    }
    drop(log);
    drop(store);
    let store = open();
    let log = store.open_instance("tree").expect("reopen");
    assert_tree_matches(log.as_ref(), &leaves);
}

pub fn check_reopen_preserves_everything(open: Open<'_>) {
    let store = open();
    let log = store.create_instance("durable").expect("create");
    let mut all = append_batches(log.as_ref(), &[3, 1, 6]);
    log.save_checkpoint("note at 10\n")
        .expect("save checkpoint");
    all.extend(append_batches(log.as_ref(), &[2, 5]));
    drop(log);
    drop(store);
    let store = open();
    let log = store.open_instance("durable").expect("reopen");
    assert_eq!(
        log.torn_tail(),
        None,
        "a cleanly closed log has no torn tail"
    );
    assert_log_holds(log.as_ref(), &all);
    let leaves: Vec<Hash> = all.iter().map(|r| *r.leaf()).collect();
    assert_tree_matches(log.as_ref(), &leaves);
    assert_eq!(
        log.latest_checkpoint().expect("checkpoint").as_deref(),
        Some("note at 10\n")
    );
    all.extend(append_batches(log.as_ref(), &[4]));
    drop(log);
    let log = store.open_instance("durable").expect("reopen again");
    assert_log_holds(log.as_ref(), &all);
}

pub fn check_checkpoints(open: Open<'_>) {
    let store = open();
    let a = store.create_instance("ck-a").expect("create a");
    let b = store.create_instance("ck-b").expect("create b");
    assert_eq!(a.latest_checkpoint().expect("none"), None);
    append_batches(a.as_ref(), &[2]);
    let note = "keyledger/ck-a\n2\nq83vEjTIkX3GQUPkcF+zr8WTkv6yDDkTngoUa15K3Rw=\n\n— signer AAAA\n";
    a.save_checkpoint(note).expect("save");
    assert_eq!(a.latest_checkpoint().expect("load").as_deref(), Some(note));
    assert_eq!(b.latest_checkpoint().expect("b none"), None);
    a.save_checkpoint("second").expect("replace");
    assert_eq!(
        a.latest_checkpoint().expect("load").as_deref(),
        Some("second")
    );
    drop((a, b));
    drop(store);
    let store = open();
    let a = store.open_instance("ck-a").expect("reopen");
    assert_eq!(
        a.latest_checkpoint().expect("load").as_deref(),
        Some("second")
    );
}

pub fn check_concurrent_readers_see_whole_batches(open: Open<'_>) {
    const BATCH: u64 = 5;
    const BATCHES: u64 = 40;
    let store = open();
    let log = store.create_instance("conc").expect("create");
    let all = batch("conc", log.head(), BATCH * BATCHES);
    let leaves: Vec<Hash> = all.iter().map(|r| *r.leaf()).collect();
    let roots: Vec<Hash> = (0..=BATCHES)
        .map(|k| {
            let (_, f) = MemoryNodes::from_leaves(leaves[..(k * BATCH) as usize].iter().copied())
                .expect("reference");
            f.root()
        })
        .collect();
    let all = Arc::new(all);
    let roots = Arc::new(roots);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (log, all, roots, done) = (log.clone(), all.clone(), roots.clone(), done.clone());
            thread::spawn(move || {
                let mut observations = 0u64;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let head = log.head();
                    assert_eq!(head.size % BATCH, 0, "saw a partial batch: {head:?}");
                    let got = log.read(0, head.size).expect("read while appending");
                    assert_eq!(got.len() as u64, head.size);
                    if let Some(last) = got.last() {
                        assert_eq!(last.link(), head.link);
                        assert_eq!(*last, *all[head.size as usize - 1].record());
                    }
                    let root = merkle::root_at(&LogNodes(log.as_ref()), head.size).expect("root");
                    assert_eq!(root, roots[(head.size / BATCH) as usize]);
                    observations += 1;
                    if finished {
                        return observations;
                    }
                }
            })
        })
        .collect();
    for chunk in all.chunks(BATCH as usize) {
        log.append(chunk).expect("append");
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().expect("reader panicked") > 0);
    }
    assert_log_holds(log.as_ref(), &all);
}

pub fn check_instances_are_isolated(open: Open<'_>) {
    let store = open();
    let a = store.create_instance("iso-a").expect("create a");
    let b = store.create_instance("iso-b").expect("create b");
    let in_a = append_batches(a.as_ref(), &[3, 4]);
    assert_eq!(b.head(), head_of(&[]));
    assert!(b.read(0, 1).is_err());
    let in_b = append_batches(b.as_ref(), &[2]);
    assert_log_holds(a.as_ref(), &in_a);
    assert_log_holds(b.as_ref(), &in_b);
    // B's chain is B's own: a batch built on A's head conflicts in B.
    let on_a = batch("iso-b", a.head(), 1);
    assert!(b.append(&on_a).is_err());
    drop((a, b));
    drop(store);
    let store = open();
    let a = store.open_instance("iso-a").expect("reopen a");
    let b = store.open_instance("iso-b").expect("reopen b");
    assert_log_holds(a.as_ref(), &in_a);
    assert_log_holds(b.as_ref(), &in_b);
    let leaves: Vec<Hash> = in_b.iter().map(|r| *r.leaf()).collect();
    assert_tree_matches(b.as_ref(), &leaves);
}

/// A record whose event does not continue the chain (its `seq` or `prev`
/// field, or not a chained JSON object at all) is refused as
/// [`StoreError::InvalidRecord`] and nothing of its batch is written.
pub fn check_broken_chain_is_refused(open: Open<'_>) {
    let store = open();
    let log = store.create_instance("chain").expect("create");
    let all = append_batches(log.as_ref(), &[3]);
    let head = log.head();
    let seal = |seq: u64, event: Vec<u8>| {
        Linked::new(seq, event)
            .sign(|link| Ok::<_, std::convert::Infallible>([link[0]; 64]))
            .unwrap_or_else(|never| match never {})
    };
    let wrong_prev = sealed("chain", head.size, &[9u8; 32], 10);
    let wrong_seq = at_seq(
        head.size,
        sealed("chain", head.size + 5, &head.link, 10).record(),
    );
    let not_json = seal(head.size, b"not an event".to_vec());
    let bad_prev_hex = seal(
        head.size,
        format!(r#"{{"seq":{},"prev":"XYZ"}}"#, head.size).into_bytes(),
    );
    for (what, bad) in [
        ("prev not the head's link", wrong_prev),
        ("seq field not the record's place", wrong_seq),
        ("not JSON", not_json),
        ("prev not hex", bad_prev_hex),
    ] {
        // Alone, and after a good record in the same batch.
        assert!(
            matches!(log.append(std::slice::from_ref(&bad)), Err(StoreError::InvalidRecord { seq, .. }) if seq == head.size),
            "{what}"
        );
        let good = sealed("chain", head.size, &head.link, 5);
        let bad_second = at_seq(head.size + 1, bad.record());
        assert!(
            matches!(log.append(&[good, bad_second]), Err(StoreError::InvalidRecord { seq, .. }) if seq == head.size + 1),
            "{what}, second in its batch"
        );
        assert_log_holds(log.as_ref(), &all);
    }
    drop(log);
    drop(store);
    let store = open();
    let log = store.open_instance("chain").expect("reopen");
    assert_log_holds(log.as_ref(), &all);
}

/// Appends to one log are serialised: of batches racing from the same head
/// exactly one is stored, every other one gets [`StoreError::Conflict`],
/// and the log holds the winner's records only.
pub fn check_racing_appends_one_wins(open: Open<'_>) {
    const RACERS: usize = 8;
    let store = open();
    let log = store.create_instance("race").expect("create");
    let mut all = append_batches(log.as_ref(), &[2]);
    let head = log.head();
    let candidates: Vec<Vec<SealedRecord>> = (0..RACERS)
        .map(|i| {
            // Distinct contents per racer: pad differs.
            let mut prev = head.link;
            (head.size..head.size + 3)
                .map(|seq| {
                    let r = sealed("race", seq, &prev, i * 7 + seq as usize);
                    prev = *r.link();
                    r
                })
                .collect()
        })
        .collect();
    let barrier = std::sync::Barrier::new(RACERS);
    let outcomes: Vec<Result<(), StoreError>> = thread::scope(|s| {
        let handles: Vec<_> = candidates
            .iter()
            .map(|b| {
                let (log, barrier) = (&log, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    log.append(b)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .collect()
    });
    let winners: Vec<usize> = (0..RACERS).filter(|&i| outcomes[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one racing batch is stored");
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Err(e) = outcome {
            assert!(
                matches!(e, StoreError::Conflict { batch_start, size } if *batch_start == head.size && *size == head.size + 3),
                "racer {i}: {e}"
            );
        }
    }
    all.extend(candidates[winners[0]].iter().cloned());
    assert_log_holds(log.as_ref(), &all);
}

/// The ledger writer over this backend: concurrent appends get distinct,
/// gap-free sequence numbers and land in the log chained and signed; the
/// checkpoints it saves verify and never go backwards; after every handle is
/// dropped a new writer continues the same chain.
pub fn check_writer_round_trip(open: Open<'_>) {
    let key = || LedgerKey::from_seed(&origin_for("writer"), &[3u8; 32]);
    let config = || WriterConfig {
        checkpoint_interval: Duration::ZERO,
        ..WriterConfig::default()
    };
    let draft = |n: u64| {
        EventDraft::new(
            Actor::operator("conformance"),
            format!("c-{n}"),
            &KeyEnabled {
                key_id: format!("k-{n}"),
            },
        )
        .expect("draft")
    };
    let vkey = key().note_verifier();
    let public = key().verifying_key();
    let checkpoint_size = |log: &dyn InstanceLog| {
        log.latest_checkpoint()
            .expect("checkpoint")
            .map(|note| {
                let cp = keyledger_core::checkpoint::parse_and_verify(
                    note.as_bytes(),
                    std::slice::from_ref(&vkey),
                )
                .expect("the saved checkpoint verifies");
                let root = merkle::root_at(&LogNodes(log), cp.size).expect("root");
                assert_eq!(cp.root, root, "checkpoint root is the log's root");
                cp.size
            })
            .unwrap_or(0)
    };
    let store = open();
    let log = store.create_instance("writer").expect("create");
    let writer = LedgerWriter::start(log.clone(), key(), config());
    let mut seqs: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let writer = &writer;
                s.spawn(move || {
                    (0..25u64)
                        .map(|i| writer.append(draft(t * 100 + i)).expect("append").seq)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("appender"))
            .collect()
    });
    seqs.sort_unstable();
    assert_eq!(seqs, (0..100).collect::<Vec<u64>>(), "gap-free, distinct");
    let mut seen = 0;
    for _ in 0..3 {
        writer.append(draft(1000)).expect("append");
        let size = checkpoint_size(log.as_ref());
        assert!(size >= seen, "checkpoints never go backwards");
        seen = size;
    }
    let note = writer.checkpoint().expect("checkpoint now");
    assert!(note.starts_with(&format!("{}\n103\n", origin_for("writer"))));
    writer.shutdown();
    assert_eq!(checkpoint_size(log.as_ref()), 103);
    let records = log.read(0, 103).expect("read");
    let mut prev = GENESIS_PREV;
    for (seq, r) in records.iter().enumerate() {
        let event: serde_json::Value = serde_json::from_slice(&r.event).expect("json");
        assert_eq!(event["seq"], seq as u64);
        assert_eq!(event["prev"], chain::to_hex(&prev));
        assert!(
            chain::verify_record(&public, &r.link(), &r.signature),
            "record {seq} is signed by the ledger key"
        );
        prev = r.link();
    }
    assert_eq!(log.head().link, prev);
    drop(log);
    drop(store);

    let store = open();
    let log = store.open_instance("writer").expect("reopen");
    assert_eq!(log.head().size, 103);
    let writer = LedgerWriter::start(log.clone(), key(), config());
    let r = writer.append(draft(2000)).expect("append after reopen");
    assert_eq!(r.seq, 103);
    let event: serde_json::Value = serde_json::from_slice(&r.event).expect("json");
    assert_eq!(event["prev"], chain::to_hex(&prev), "the chain continues");
    writer.shutdown();
    assert_eq!(checkpoint_size(log.as_ref()), 104);
}
