//! Builds real ledgers through the real writer and exports them as bundles.
//! One copy, shared by the root's tests and keyledger-verify's (by
//! `#[path]`), so it names the crates it uses.

use std::path::{Path, PathBuf};

use keyledger_core::event::Actor;
use keyledger_core::record::{FrameReader, Record};
use keyledger_ledger::audit::SignedCheckpoint;
use keyledger_ledger::ledger::{InitialAdmin, Ledger};
use keyledger_ledger::sample_events::realistic_event;
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::writer::WriterConfig;

/// A bundle plus what an auditor would trust about it.
pub struct Fixture {
    pub bundle: PathBuf,
    /// The genesis ledger key (note vkey line).
    pub trusted_key: String,
    /// Every ledger key of the instance (note vkey lines, genesis first).
    pub ledger_keys: Vec<String>,
    /// The instance's data directory (its ledger key files are under
    /// `keyledger_ledger::ledger::keys_dir(data, INSTANCE)`).
    pub data: PathBuf,
    /// A checkpoint taken at `trusted_size`.
    pub trusted_checkpoint: String,
    pub trusted_size: u64,
    pub size: u64,
}

pub const INSTANCE: &str = "acme";

/// Appends `events` realistic events (16 threads), rotating the ledger key
/// after `rotate_at` events if given, takes a trusted checkpoint after
/// `trusted_at` events, and exports everything to `dir/bundle`.
pub fn build(dir: &Path, events: u64, rotate_at: Option<u64>, trusted_at: u64) -> Fixture {
    let data = dir.join("data");
    let store = EmbeddedStore::open(&data).expect("store");
    let admin = InitialAdmin {
        admin_id: "admin-1".into(),
        public_key: "MCowBQYDK2VwAyEA0000000000000000000000000000000000000000".into(),
    };
    let ledger = Ledger::create(
        &store,
        &data,
        INSTANCE,
        &admin,
        "test",
        WriterConfig::default(),
    )
    .expect("create");
    let trusted_key = ledger.writer().current_key().note_verifier().to_string();
    let mut trusted_checkpoint = String::new();
    let mut done = 0u64;
    let mut milestones: Vec<u64> = vec![trusted_at, events];
    if let Some(r) = rotate_at {
        milestones.push(r);
    }
    milestones.sort();
    for milestone in milestones {
        append_many(&ledger, done, milestone.saturating_sub(done));
        done = done.max(milestone);
        if Some(milestone) == rotate_at {
            ledger
                .rotate_key(Actor::operator("test"), "rotate")
                .expect("rotate");
        }
        if milestone == trusted_at && trusted_checkpoint.is_empty() {
            trusted_checkpoint = ledger.writer().checkpoint().expect("checkpoint");
        }
    }
    let trusted_size = keyledger_core::checkpoint::parse_unverified(trusted_checkpoint.as_bytes())
        .expect("parse")
        .size;
    let note = ledger.writer().checkpoint().expect("final checkpoint");
    let size = ledger.log().head().size;
    let mut ledger_keys = vec![trusted_key.clone()];
    let current = ledger.writer().current_key().note_verifier().to_string();
    if current != trusted_key {
        ledger_keys.push(current);
    }
    let bundle = dir.join("bundle");
    let checkpoint = SignedCheckpoint { note, size };
    keyledger_ledger::export::export_bundle(ledger.writer(), &checkpoint, &bundle).expect("export");
    ledger.shutdown();
    Fixture {
        bundle,
        trusted_key,
        ledger_keys,
        data,
        trusted_checkpoint,
        trusted_size,
        size,
    }
}

fn append_many(ledger: &Ledger, start: u64, count: u64) {
    let next = std::sync::atomic::AtomicU64::new(start);
    let end = start + count;
    std::thread::scope(|s| {
        for t in 0..16 {
            let next = &next;
            s.spawn(move || {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= end {
                        break;
                    }
                    ledger
                        .append(realistic_event(n, t).expect("draft"))
                        .expect("append");
                }
            });
        }
    });
}

/// All records of a bundle, in file order.
pub fn read_records(bundle: &Path) -> Vec<Record> {
    let bytes = std::fs::read(bundle.join("records.bin")).expect("records");
    let mut reader = FrameReader::new(&bytes[..]);
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().expect("frame") {
        out.push(r);
    }
    out
}

/// Rewrites a bundle's records file.
pub fn write_records(bundle: &Path, records: &[Record]) {
    let mut bytes = Vec::new();
    for r in records {
        r.encode_frame(&mut bytes);
    }
    std::fs::write(bundle.join("records.bin"), bytes).expect("write records");
}

/// Copies a bundle directory.
pub fn copy_bundle(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read bundle") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}
