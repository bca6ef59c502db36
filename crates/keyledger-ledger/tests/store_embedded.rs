//! The embedded backend: the conformance suite plus crash-recovery, derived
//! data and locking tests specific to its files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use keyledger_core::chain::GENESIS_PREV;
use keyledger_core::merkle::Hash;
use keyledger_core::record::Record;
use keyledger_ledger::conformance::{
    append_batches, assert_log_holds, assert_tree_matches, at_seq, batch, sealed,
};
use keyledger_ledger::store::embedded::{EmbeddedLog, EmbeddedStore};
use keyledger_ledger::store::{ChainHead, EventStore, InstanceLog, SealedRecord, StoreError};

/// Fresh storage per case: a new temporary data directory, opened anew by
/// every call of the returned function (it owns the directory).
fn fresh() -> impl Fn() -> EmbeddedStore {
    let dir = tempfile::tempdir().expect("tempdir");
    move || EmbeddedStore::open(dir.path()).expect("open store")
}

keyledger_ledger::store_conformance_tests!(fresh);

/// The embedded store, except that it lists instances in reverse order.
struct ReversedList(EmbeddedStore);

impl EventStore for ReversedList {
    fn create_instance(&self, instance: &str) -> Result<Arc<dyn InstanceLog>, StoreError> {
        self.0.create_instance(instance)
    }
    fn open_instance(&self, instance: &str) -> Result<Arc<dyn InstanceLog>, StoreError> {
        self.0.open_instance(instance)
    }
    fn list_instances(&self) -> Result<Vec<String>, StoreError> {
        let mut names = self.0.list_instances()?;
        names.reverse();
        Ok(names)
    }
}

#[test]
fn run_all_names_the_cases_a_broken_backend_fails() {
    let broken = || {
        let open = fresh();
        move || ReversedList(open())
    };
    let failure = std::panic::catch_unwind(|| keyledger_ledger::conformance::run_all(broken))
        .expect_err("a backend listing instances unsorted fails the suite");
    let message = failure
        .downcast_ref::<String>()
        .expect("an assertion message");
    assert!(
        message.ends_with("store conformance cases failed: check_instances_create_open_list"),
        "{message}"
    );
    keyledger_ledger::conformance::run_all(fresh);
}

const INST: &str = "t";

fn log_dir(data: &Path) -> PathBuf {
    data.join("instances").join(INST).join("log")
}

fn records_path(data: &Path) -> PathBuf {
    log_dir(data).join("records.log")
}

fn open(data: &Path) -> (EmbeddedStore, Arc<EmbeddedLog>) {
    let store = EmbeddedStore::open(data).expect("open store");
    let log = store.open_log(INST).expect("open log");
    (store, log)
}

fn open_err(data: &Path) -> StoreError {
    let store = EmbeddedStore::open(data).expect("open store");
    match store.open_log(INST) {
        Ok(_) => panic!("open unexpectedly succeeded"),
        Err(e) => e,
    }
}

/// Creates instance `t` with the given batch sizes; returns its records.
fn setup(data: &Path, batches: &[u64]) -> Vec<SealedRecord> {
    let store = EmbeddedStore::open(data).expect("open store");
    let log = store.create_log(INST).expect("create");
    append_batches(log.as_ref(), batches)
}

fn leaves(records: &[SealedRecord]) -> Vec<Hash> {
    records.iter().map(|r| *r.leaf()).collect()
}

/// Start offsets of the frames in a record log (documented layout: 16-byte
/// header, then `seq(8) batch_index(4) batch_len(4) len(4) event sig(64) crc(4)`),
/// plus the end offset.
fn frame_offsets(log: &[u8]) -> Vec<usize> {
    let mut at = 16;
    let mut out = vec![at];
    while at < log.len() {
        let len = u32::from_be_bytes(log[at + 16..at + 20].try_into().expect("4")) as usize;
        at += 88 + len;
        out.push(at);
    }
    assert_eq!(at, log.len(), "log ends on a frame boundary");
    out
}

/// All files of the log directory (not sub-directories), to restore them.
fn snapshot(data: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(log_dir(data))
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect()
}

fn restore(data: &Path, snap: &BTreeMap<PathBuf, Vec<u8>>) {
    let dir = log_dir(data);
    let _ = fs::remove_dir_all(dir.join("torn"));
    for entry in fs::read_dir(&dir).expect("read dir") {
        let p = entry.expect("entry").path();
        if p.is_file() && !snap.contains_key(&p) {
            fs::remove_file(p).expect("remove");
        }
    }
    for (p, bytes) in snap {
        fs::write(p, bytes).expect("write");
    }
}

/// Asserts the log was recovered to exactly `kept` after discarding
/// `discarded` bytes, then that appends continue at the next seq.
fn assert_recovered(data: &Path, kept: &[SealedRecord], discarded: u64, append_after: bool) {
    let (store, log) = open(data);
    let tail = store.recovery_report(INST).expect("a tail was recovered");
    assert_eq!(tail.discarded_bytes, discarded, "{tail:?}");
    assert_eq!(tail.first_discarded_seq, kept.len() as u64);
    assert_eq!(log.open_report().tail.as_ref(), Some(&tail));
    let saved = tail.saved_copy.as_ref().expect("copy kept");
    assert_eq!(fs::metadata(saved).expect("copy").len(), discarded);
    assert_log_holds(log.as_ref(), kept);
    if !append_after {
        return;
    }
    assert_tree_matches(log.as_ref(), &leaves(kept));
    let more = batch(INST, log.head(), 2);
    log.append(&more).expect("append after recovery");
    drop(log);
    let (store, log) = open(data);
    assert_eq!(store.recovery_report(INST), None);
    let mut all = kept.to_vec();
    all.extend(more);
    assert_log_holds(log.as_ref(), &all);
    assert_tree_matches(log.as_ref(), &leaves(&all));
}

#[test]
fn torn_tail_at_every_cut_of_the_last_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let all = setup(data, &[2, 1, 2]);
    let snap = snapshot(data);
    let bytes = fs::read(records_path(data)).expect("log");
    let offsets = frame_offsets(&bytes);
    let kept_end = offsets[3];
    for cut in kept_end + 1..bytes.len() {
        restore(data, &snap);
        fs::write(records_path(data), &bytes[..cut]).expect("cut");
        // Full check (tree, append, reopen) on a sample of cuts.
        let full = cut % 23 == 0 || cut == offsets[4] || cut == bytes.len() - 1;
        assert_recovered(data, &all[..3], (cut - kept_end) as u64, full);
    }
    // A cut exactly after the last complete batch is a clean log.
    restore(data, &snap);
    fs::write(records_path(data), &bytes[..kept_end]).expect("cut");
    let (store, log) = open(data);
    assert_eq!(store.recovery_report(INST), None);
    assert_log_holds(log.as_ref(), &all[..3]);
}

#[test]
fn unfinished_batch_reports_its_complete_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let all = setup(data, &[1, 4]);
    let bytes = fs::read(records_path(data)).expect("log");
    let offsets = frame_offsets(&bytes);
    // Three of the last batch's four frames made it, cleanly.
    fs::write(records_path(data), &bytes[..offsets[4]]).expect("cut");
    let (store, log) = open(data);
    let tail = store.recovery_report(INST).expect("tail");
    assert_eq!(tail.discarded_complete_records, 3);
    assert_eq!(tail.discarded_bytes, (offsets[4] - offsets[1]) as u64);
    assert_log_holds(log.as_ref(), &all[..1]);
}

#[test]
fn zero_filled_tails_are_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let all = setup(data, &[3, 2]);
    let snap = snapshot(data);
    let bytes = fs::read(records_path(data)).expect("log");
    let offsets = frame_offsets(&bytes);
    for zeros in [1usize, 19, 20, 87, 88, 4096, 70_000] {
        restore(data, &snap);
        let mut b = bytes.clone();
        b.resize(b.len() + zeros, 0);
        fs::write(records_path(data), &b).expect("write");
        assert_recovered(data, &all, zeros as u64, zeros == 4096);
    }
    // The last batch's pages never made it: the file is extended, zeros inside.
    for from in [offsets[3], offsets[4], offsets[4] + 30, bytes.len() - 5] {
        restore(data, &snap);
        let mut b = bytes.clone();
        b[from..].fill(0);
        fs::write(records_path(data), &b).expect("write");
        assert_recovered(
            data,
            &all[..3],
            (bytes.len() - offsets[3]) as u64,
            from == offsets[4],
        );
    }
}

#[test]
fn flipped_byte_in_the_last_batch_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let all = setup(data, &[2, 2]);
    let snap = snapshot(data);
    let bytes = fs::read(records_path(data)).expect("log");
    let offsets = frame_offsets(&bytes);
    for at in offsets[2]..bytes.len() {
        restore(data, &snap);
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        fs::write(records_path(data), &b).expect("write");
        let full = at % 41 == 0;
        assert_recovered(data, &all[..2], (bytes.len() - offsets[2]) as u64, full);
    }
}

#[test]
fn corruption_before_the_tail_is_reported_with_its_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    // Batches: [0] [1] [2,3,4] [5] [6,7]
    setup(data, &[1, 1, 3, 1, 2]);
    let snap = snapshot(data);
    let bytes = fs::read(records_path(data)).expect("log");
    let offsets = frame_offsets(&bytes);
    for seq in 0..6 {
        let (start, end) = (offsets[seq], offsets[seq + 1]);
        for at in [
            start,
            start + 7,
            start + 11,
            start + 15,
            start + 18,
            start + 40,
            end - 70,
            end - 1,
        ] {
            restore(data, &snap);
            let mut b = bytes.clone();
            b[at] ^= 0x01;
            fs::write(records_path(data), &b).expect("write");
            match open_err(data) {
                StoreError::Corrupt { seq: got, .. } => {
                    assert_eq!(got, seq as u64, "flip at byte {at}")
                }
                other => panic!("flip at byte {at}: {other}"),
            }
            // Nothing was cut: the evidence is still there.
            assert_eq!(fs::read(records_path(data)).expect("log"), b);
        }
    }
    // Zeros over a whole frame in the middle are corruption too.
    restore(data, &snap);
    let mut b = bytes.clone();
    b[offsets[3]..offsets[4]].fill(0);
    fs::write(records_path(data), &b).expect("write");
    assert!(matches!(open_err(data), StoreError::Corrupt { seq: 3, .. }));
}

/// Builds a store frame exactly as `docs/STORE-EMBEDDED.md` describes it.
fn documented_frame(seq: u64, index: u32, len: u32, record: &Record) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&index.to_be_bytes());
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&(record.event.len() as u32).to_be_bytes());
    f.extend_from_slice(&record.event);
    f.extend_from_slice(&record.signature);
    let crc = crc32fast::hash(&f);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

#[test]
fn frame_layout_is_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let all = setup(data, &[1, 3]);
    let mut expected = b"KLRECLOG\0\0\0\x01\0\0\0\0".to_vec();
    expected.extend(documented_frame(0, 0, 1, all[0].record()));
    for i in 0..3u32 {
        expected.extend(documented_frame(
            1 + u64::from(i),
            i,
            3,
            all[1 + i as usize].record(),
        ));
    }
    assert_eq!(fs::read(records_path(data)).expect("log"), expected);
}

#[test]
fn valid_frames_that_break_the_chain_are_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let all = setup(data, &[2]);
    let snap = snapshot(data);
    let head = ChainHead {
        size: 2,
        link: *all[1].link(),
    };
    let good = sealed(INST, 2, &head.link, 5);
    let wrong_prev = sealed(INST, 2, all[0].link(), 5);
    let wrong_event_seq = sealed(INST, 3, &head.link, 5);
    let cases = [
        (documented_frame(2, 0, 1, wrong_prev.record()), "prev"),
        (
            documented_frame(2, 0, 1, wrong_event_seq.record()),
            "event seq",
        ),
        (documented_frame(3, 0, 1, good.record()), "frame seq"),
        (documented_frame(2, 1, 2, good.record()), "batch"),
    ];
    for (frame, what) in cases {
        restore(data, &snap);
        let mut b = fs::read(records_path(data)).expect("log");
        b.extend(frame);
        fs::write(records_path(data), &b).expect("write");
        assert!(
            matches!(open_err(data), StoreError::Corrupt { seq: 2, .. }),
            "{what}"
        );
    }
    restore(data, &snap);
    let mut b = fs::read(records_path(data)).expect("log");
    b.extend(documented_frame(2, 0, 1, good.record()));
    fs::write(records_path(data), &b).expect("write");
    let (_, log) = open(data);
    let mut all = all;
    all.push(good);
    assert_log_holds(log.as_ref(), &all);
}

#[test]
fn append_refuses_records_that_do_not_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let all = setup(data, &[2]);
    let (_, log) = open(data);
    let head = log.head();
    // (A wrong link or leaf cannot be built: a SealedRecord computes both
    // from its record; `sealed_records_carry_their_own_link_and_leaf`.)
    let wrong_prev = sealed(INST, 2, &GENESIS_PREV, 1);
    let wrong_event_seq = at_seq(2, sealed(INST, 5, &head.link, 1).record());
    let signature = sealed(INST, 2, &head.link, 1).record().signature;
    let not_json = at_seq(
        2,
        &Record {
            event: b"not json".to_vec(),
            signature,
        },
    );
    let empty = at_seq(
        2,
        &Record {
            event: Vec::new(),
            signature,
        },
    );
    for bad in [wrong_prev, wrong_event_seq, not_json, empty] {
        let good_first = batch(INST, head, 1);
        let mut b = vec![bad.clone()];
        assert!(matches!(
            log.append(&b),
            Err(StoreError::InvalidRecord { seq: 2, .. })
        ));
        // Second in a batch: the whole batch is refused.
        b = good_first.clone();
        b.push(at_seq(3, bad.record()));
        assert!(log.append(&b).is_err());
    }
    assert_log_holds(log.as_ref(), &all);
    drop(log);
    let (_, log) = open(data);
    assert_log_holds(log.as_ref(), &all);
}

#[test]
fn derived_files_are_rebuilt_when_damaged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let store = EmbeddedStore::open(data).expect("store");
    let log = store.create_log(INST).expect("create");
    let mut all = append_batches(log.as_ref(), &[5, 8, 3]);
    log.save_checkpoint("ck").expect("checkpoint");
    all.extend(append_batches(log.as_ref(), &[6]));
    drop(log);
    drop(store);
    let snap = snapshot(data);
    let dirp = log_dir(data);
    type Damage = fn(&Path);
    let damages: [(&str, Damage, bool); 9] = [
        ("none", |_| {}, true),
        (
            "delete index",
            |d| fs::remove_file(d.join("records.idx")).expect("rm"),
            false,
        ),
        (
            "delete nodes",
            |d| fs::remove_file(d.join("tree.nodes")).expect("rm"),
            false,
        ),
        (
            "delete trusted",
            |d| fs::remove_file(d.join("trusted")).expect("rm"),
            false,
        ),
        (
            "truncate nodes",
            |d| truncate_half(&d.join("tree.nodes")),
            false,
        ),
        (
            "truncate index",
            |d| truncate_half(&d.join("records.idx")),
            false,
        ),
        ("garbage nodes", |d| garble(&d.join("tree.nodes")), false),
        ("garbage index", |d| garble(&d.join("records.idx")), false),
        ("garbage trusted", |d| garble(&d.join("trusted")), false),
    ];
    for (what, damage, trusted) in damages {
        restore(data, &snap);
        damage(&dirp);
        let (store, log) = open(data);
        let report = log.open_report().clone();
        assert_eq!(store.recovery_report(INST), None, "{what}");
        if trusted {
            assert_eq!(
                (report.trusted_size, report.rescanned_records),
                (16, 6),
                "{what}"
            );
        } else {
            assert_eq!(
                (report.trusted_size, report.rescanned_records),
                (0, 22),
                "{what}"
            );
        }
        assert_log_holds(log.as_ref(), &all);
        assert_tree_matches(log.as_ref(), &leaves(&all));
        assert_eq!(
            log.latest_checkpoint().expect("ck").as_deref(),
            Some("ck"),
            "{what}"
        );
        drop(log);
        // The rebuild was saved: the next open rescans nothing.
        let (_, log) = open(data);
        assert_eq!(log.open_report().rescanned_records, 0, "{what}");
        assert_eq!(log.open_report().trusted_size, 22, "{what}");
    }
}

fn truncate_half(path: &Path) {
    let len = fs::metadata(path).expect("meta").len();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
}

fn garble(path: &Path) {
    let len = fs::metadata(path).expect("meta").len() as usize;
    let junk: Vec<u8> = (0..len).map(|i| (i * 131 + 7) as u8).collect();
    fs::write(path, junk).expect("garble");
}

#[test]
fn open_after_a_checkpoint_rescans_only_what_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let store = EmbeddedStore::open(data).expect("store");
    let log = store.create_log(INST).expect("create");
    let mut all = append_batches(log.as_ref(), &[50; 20]);
    log.save_checkpoint("ck").expect("checkpoint");
    all.extend(append_batches(log.as_ref(), &[3, 4]));
    drop(log);
    let log = store.open_log(INST).expect("reopen");
    assert_eq!(log.open_report().trusted_size, 1000);
    assert_eq!(log.open_report().rescanned_records, 7);
    assert_log_holds(log.as_ref(), &all);
}

#[test]
fn missing_acknowledged_records_are_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let store = EmbeddedStore::open(data).expect("store");
    let log = store.create_log(INST).expect("create");
    append_batches(log.as_ref(), &[2, 2, 2]);
    log.save_checkpoint("ck").expect("checkpoint");
    drop(log);
    drop(store);
    let bytes = fs::read(records_path(data)).expect("log");
    let offsets = frame_offsets(&bytes);
    // Cut at a batch boundary (clean) and inside a frame (torn-looking):
    // either way records covered by the trusted point are gone.
    for (cut, seq) in [(offsets[4], 4), (offsets[5] - 10, 4), (offsets[2] + 3, 2)] {
        fs::write(records_path(data), &bytes[..cut]).expect("cut");
        match open_err(data) {
            StoreError::Corrupt { seq: got, .. } => assert_eq!(got, seq, "cut {cut}"),
            other => panic!("cut {cut}: {other}"),
        }
        assert_eq!(
            fs::read(records_path(data)).expect("log").len(),
            cut,
            "nothing cut"
        );
    }
}

#[test]
fn bad_header_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    setup(data, &[1]);
    let mut bytes = fs::read(records_path(data)).expect("log");
    bytes[3] ^= 1;
    fs::write(records_path(data), &bytes).expect("write");
    assert!(matches!(open_err(data), StoreError::Corrupt { seq: 0, .. }));
    fs::write(records_path(data), b"").expect("write");
    assert!(matches!(open_err(data), StoreError::Corrupt { seq: 0, .. }));
}

#[test]
fn half_created_instance_is_completed_by_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let store = EmbeddedStore::open(data).expect("store");
    fs::create_dir_all(log_dir(data)).expect("mkdir");
    fs::write(log_dir(data).join("LOCK"), b"").expect("lock file");
    // The lead's files beside log/ are none of this backend's business.
    fs::write(
        log_dir(data).parent().expect("instance dir").join("keys"),
        b"k",
    )
    .expect("keys");
    assert_eq!(store.list_instances().expect("list"), Vec::<String>::new());
    assert!(matches!(
        store.open_log(INST),
        Err(StoreError::UnknownInstance(_))
    ));
    let log = store.create_log(INST).expect("create completes");
    append_batches(log.as_ref(), &[1]);
    assert_eq!(store.list_instances().expect("list"), [INST]);
}

#[test]
fn second_open_is_locked_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    setup(data, &[1]);
    let (store, log) = open(data);
    assert!(
        matches!(store.open_log(INST), Err(StoreError::Locked { instance }) if instance == INST)
    );
    let other = EmbeddedStore::open(data).expect("second store");
    assert!(matches!(
        other.open_instance(INST),
        Err(StoreError::Locked { .. })
    ));
    assert!(matches!(
        other.create_instance(INST),
        Err(StoreError::InstanceExists(_))
    ));
    // Another process is refused too.
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "lock_probe_child", "--ignored", "--nocapture"])
        .env("KEYLEDGER_LOCK_PROBE", data)
        .output()
        .expect("spawn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PROBE: locked"), "{stdout}");
    drop(log);
    let log = store.open_log(INST).expect("open after drop");
    assert_eq!(log.head().size, 1);
}

/// A child process forked while the log was open holds a copy of the lock's
/// descriptor until its `exec`; a log closed and reopened in that instant
/// (a test spawning the CLI while another reopens its instance; a server
/// restarting an instance while a hook runs) must wait for it, not fail.
#[test]
fn reopen_waits_for_a_lock_inherited_by_a_forked_child() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    setup(data, &[1]);
    let (store, log) = open(data);
    let mut command = Command::new("true");
    // SAFETY: the closure runs in the forked child before exec and only
    // sleeps (nanosleep is async-signal-safe); it holds the inherited
    // descriptors, the lock's among them, for that long.
    unsafe {
        command.pre_exec(|| {
            std::thread::sleep(std::time::Duration::from_millis(400));
            Ok(())
        });
    }
    // `spawn` returns only once the child has exec'd, so the fork happens
    // on another thread, as it does when a test or hook spawns a program
    // concurrently; this thread closes and reopens the log meanwhile.
    let (forked, is_forked) = std::sync::mpsc::channel();
    let spawner = std::thread::spawn(move || {
        // `spawn` blocks for the child's sleep; say when the fork is near.
        forked.send(()).expect("send");
        command.spawn().expect("spawn").wait().expect("wait")
    });
    is_forked.recv().expect("recv");
    std::thread::sleep(std::time::Duration::from_millis(150));
    drop(log);
    let log = store
        .open_log(INST)
        .expect("reopen while the child still holds the lock");
    assert_eq!(log.head().size, 1);
    assert!(spawner.join().expect("join").success());
}

/// Run by `second_open_is_locked_until_the_first_is_dropped` in a child process.
#[test]
#[ignore = "helper run in a child process"]
fn lock_probe_child() {
    let Some(data) = std::env::var_os("KEYLEDGER_LOCK_PROBE") else {
        return;
    };
    let store = EmbeddedStore::open(Path::new(&data)).expect("store");
    match store.open_instance(INST) {
        Err(StoreError::Locked { .. }) => println!("PROBE: locked"),
        Ok(_) => println!("PROBE: opened"),
        Err(e) => println!("PROBE: error {e}"),
    }
}

mod damage {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever happens to the record log, opening never panics; it
        /// either recovers a prefix of what was written (with a consistent
        /// tree) or reports corruption.
        #[test]
        fn arbitrary_damage_never_panics(
            flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..3),
            cut in prop::option::of(any::<Index>()),
            extra in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let data = dir.path();
            let all = setup(data, &[1, 3, 2]);
            let mut bytes = fs::read(records_path(data)).expect("log");
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes.extend(&extra);
            for (at, mask) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            fs::write(records_path(data), &bytes).expect("write");
            let store = EmbeddedStore::open(data).expect("store");
            match store.open_log(INST) {
                Ok(log) => {
                    let size = log.head().size as usize;
                    prop_assert!(size <= all.len());
                    assert_log_holds(log.as_ref(), &all[..size]);
                    assert_tree_matches(log.as_ref(), &leaves(&all[..size]));
                }
                Err(StoreError::Corrupt { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
}
