//! Tamper trials on a real 10k-event bundle (with a ledger-key rotation in
//! the middle): removed, swapped, duplicated, truncated and forked logs, and
//! sampled single-byte changes, are all detected and located. The exhaustive
//! every-byte trial is `crates/keyledger-verify/tests/tamper_exhaustive.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::fixture::{self, Fixture};
use keyledger::chain;
use keyledger::ledger_key::LedgerKey;
use keyledger::record::Record;
use keyledger::verify::{self, Failure, Report, Trust};

const EVENTS: u64 = 10_000;
const ROTATE_AT: u64 = 5_000;
const TRUSTED_AT: u64 = 8_000;

fn fixture() -> &'static (tempfile::TempDir, Fixture) {
    static FIXTURE: OnceLock<(tempfile::TempDir, Fixture)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = fixture::build(dir.path(), EVENTS, Some(ROTATE_AT), TRUSTED_AT);
        (dir, f)
    })
}

fn full_trust(f: &Fixture) -> Trust {
    Trust {
        keys: verify::parse_trusted_keys(&f.trusted_key).expect("key"),
        checkpoint: Some(f.trusted_checkpoint.clone()),
    }
}

/// The library's report on `dir`; both command-line verifiers (`keyledger
/// verify` and `keyledger-verify`) must agree with each other on it, and
/// exit 0 exactly when the report is intact. (Every trusted key here is
/// the fixture's genesis key.)
fn verify_dir(dir: &Path, trust: &Trust) -> Report {
    let report = verify::verify_bundle(dir, trust, &|_| {}).expect("verify ran");
    let files = tempfile::tempdir().expect("tempdir");
    let key_file = files.path().join("trusted.key");
    let checkpoint_file = files.path().join("trusted.checkpoint");
    let mut args = vec![dir.to_str().expect("utf8").to_string()];
    if !trust.keys.is_empty() {
        std::fs::write(&key_file, &fixture().1.trusted_key).expect("key file");
        args.extend(["--trusted-key".into(), key_file.display().to_string()]);
    }
    if let Some(checkpoint) = &trust.checkpoint {
        std::fs::write(&checkpoint_file, checkpoint).expect("checkpoint file");
        args.extend([
            "--trusted-checkpoint".into(),
            checkpoint_file.display().to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::verifiers::both(&args);
    assert_eq!(
        out.status.code(),
        Some(if report.ok() { 0 } else { 1 }),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    report
}

/// A scratch copy of the fixture bundle.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    fixture::copy_bundle(&fixture().1.bundle, &path);
    (dir, path)
}

#[test]
fn intact_bundle_verifies_with_and_without_trust() {
    let (_, f) = fixture();
    let report = verify_dir(&f.bundle, &full_trust(f));
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, f.size);
    assert_eq!(report.key_rotations, 1);
    assert!(verify_dir(&f.bundle, &Trust::default()).ok());
}

#[test]
fn every_event_written_matches_its_schema() {
    let (_, f) = fixture();
    let seen = common::events::Schemas::load().check_all(&fixture::read_records(&f.bundle));
    assert!(seen.len() >= 10, "too few event types exercised: {seen:?}");
}

#[test]
fn removed_record_is_located() {
    let (_dir, b) = scratch("removed");
    let mut records = fixture::read_records(&b);
    records.remove(1234);
    fixture::write_records(&b, &records);
    let failure = verify_dir(&b, &Trust::default()).failure;
    assert_eq!(
        failure,
        Some(Failure::Removed {
            seq: 1234,
            found: 1235
        })
    );
}

#[test]
fn swapped_records_are_located() {
    let (_dir, b) = scratch("swapped");
    let mut records = fixture::read_records(&b);
    records.swap(4321, 4322);
    fixture::write_records(&b, &records);
    let failure = verify_dir(&b, &Trust::default()).failure;
    assert_eq!(
        failure,
        Some(Failure::Reordered {
            seq: 4321,
            found: 4322
        })
    );
}

#[test]
fn duplicated_record_is_located() {
    let (_dir, b) = scratch("duplicated");
    let mut records = fixture::read_records(&b);
    let copy = records[777].clone();
    records.insert(778, copy);
    fixture::write_records(&b, &records);
    let failure = verify_dir(&b, &Trust::default()).failure;
    assert_eq!(
        failure,
        Some(Failure::Duplicated {
            seq: 777,
            position: 778
        })
    );
}

#[test]
fn truncated_tail_is_detected_against_the_trusted_checkpoint() {
    let (_, f) = fixture();
    // The attacker drops the tail and ships an older, genuinely signed
    // checkpoint that matches what is left: only the trusted checkpoint tells.
    let (_dir, b) = scratch("truncated");
    let mut records = fixture::read_records(&b);
    records.truncate(6000);
    fixture::write_records(&b, &records);
    let older = rebuild_checkpoint_for(&b, &records);
    std::fs::write(b.join("checkpoint"), older).expect("checkpoint");
    let trust = full_trust(f);
    assert_eq!(
        verify_dir(&b, &trust).failure,
        Some(Failure::Truncated {
            expected: f.trusted_size,
            found: 6000
        })
    );
    // Without replacing the checkpoint, the bundle's own checkpoint tells.
    let (_dir2, b2) = scratch("truncated2");
    let mut records = fixture::read_records(&b2);
    records.truncate(9000);
    fixture::write_records(&b2, &records);
    assert_eq!(
        verify_dir(&b2, &Trust::default()).failure,
        Some(Failure::Truncated {
            expected: f.size,
            found: 9000
        })
    );
}

/// Signs a checkpoint of `records` with the real ledger key in force: what a
/// server would have published at that size.
fn rebuild_checkpoint_for(bundle: &Path, records: &[Record]) -> String {
    let data = fixture().0.path().join("data");
    let keys_dir = keyledger::ledger::keys_dir(&data, fixture::INSTANCE);
    // Before ROTATE_AT the genesis key is in force.
    let genesis_id = {
        let env = keyledger::event::Envelope::parse(&records[0].event).expect("genesis");
        env.ledger_key
    };
    let key = LedgerKey::read_file(&keys_dir.join(format!("{genesis_id}.key"))).expect("key");
    let mut frontier = keyledger::merkle::Frontier::new();
    for r in records {
        frontier.push(r.leaf_hash());
    }
    let last_link = records.last().expect("records").link();
    let _ = bundle;
    let checkpoint = keyledger::checkpoint::Checkpoint {
        origin: keyledger::writer::origin_for(fixture::INSTANCE),
        size: records.len() as u64,
        root: frontier.root(),
        extensions: vec![format!("keyledger-chain {}", chain::to_hex(&last_link))],
    };
    sign_note(&checkpoint, &key)
}

fn sign_note(checkpoint: &keyledger::checkpoint::Checkpoint, key: &LedgerKey) -> String {
    key.sign_checkpoint(checkpoint)
}

/// Re-links and re-signs records `from..` with `key`, naming it in each event.
fn fork_and_resign(records: &mut [Record], from: usize, key: &LedgerKey) {
    let new_id = key.key_id_hex();
    let mut prev = if from == 0 {
        chain::GENESIS_PREV
    } else {
        records[from - 1].link()
    };
    for record in records.iter_mut().skip(from) {
        let mut value: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&record.event).expect("event");
        value.insert("prev".into(), chain::to_hex(&prev).into());
        value.insert("ledger_key".into(), new_id.clone().into());
        if value["type"] == "instance.created" {
            let payload = value
                .get_mut("payload")
                .expect("payload")
                .as_object_mut()
                .expect("obj");
            payload.insert("ledger_key_id".into(), new_id.clone().into());
            use base64::Engine;
            payload.insert(
                "ledger_public_key".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(key.verifying_key().as_bytes())
                    .into(),
            );
        }
        record.event = serde_json::to_vec(&value).expect("json");
        let link = chain::link(&record.event);
        record.signature = key.sign_record(&link);
        prev = link;
    }
}

#[test]
fn fork_resigned_with_another_key_is_located() {
    let (_dir, b) = scratch("fork");
    let mut records = fixture::read_records(&b);
    let attacker =
        LedgerKey::generate(&keyledger::writer::origin_for(fixture::INSTANCE)).expect("key");
    // Change one event in the middle, then re-chain and re-sign everything after.
    let text = String::from_utf8(records[3000].event.clone()).expect("utf8");
    records[3000].event = text.replacen("cred-", "cred-X", 1).into_bytes();
    fork_and_resign(&mut records, 3000, &attacker);
    fixture::write_records(&b, &records);
    let keys = format!(
        "{}{}\n",
        std::fs::read_to_string(b.join("keys")).expect("keys"),
        attacker.note_verifier()
    );
    std::fs::write(b.join("keys"), keys).expect("keys");
    let failure = verify_dir(&b, &Trust::default()).failure;
    assert!(
        matches!(failure, Some(Failure::UnauthorizedKey { seq: 3000, .. })),
        "{failure:?}"
    );
}

#[test]
fn whole_log_resigned_from_genesis_is_caught_by_the_trusted_key_and_checkpoint() {
    let (_, f) = fixture();
    let (_dir, b) = scratch("refork");
    let mut records = fixture::read_records(&b);
    records.truncate(ROTATE_AT as usize); // before the rotation, so one key signs all
    let attacker =
        LedgerKey::generate(&keyledger::writer::origin_for(fixture::INSTANCE)).expect("key");
    fork_and_resign(&mut records, 0, &attacker);
    fixture::write_records(&b, &records);
    let mut frontier = keyledger::merkle::Frontier::new();
    for r in &records {
        frontier.push(r.leaf_hash());
    }
    let checkpoint = keyledger::checkpoint::Checkpoint {
        origin: keyledger::writer::origin_for(fixture::INSTANCE),
        size: records.len() as u64,
        root: frontier.root(),
        extensions: vec![format!(
            "keyledger-chain {}",
            chain::to_hex(&records.last().expect("r").link())
        )],
    };
    std::fs::write(b.join("checkpoint"), sign_note(&checkpoint, &attacker)).expect("cp");
    std::fs::write(b.join("keys"), format!("{}\n", attacker.note_verifier())).expect("keys");
    let manifest_path = b.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    manifest["size"] = (records.len() as u64).into();
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("manifest");
    // Self-consistent without trust...
    assert!(verify_dir(&b, &Trust::default()).ok());
    // ...but not with the trusted genesis key,
    let keys_only = Trust {
        keys: verify::parse_trusted_keys(&f.trusted_key).expect("key"),
        checkpoint: None,
    };
    assert!(matches!(
        verify_dir(&b, &keys_only).failure,
        Some(Failure::UntrustedKey { .. })
    ));
    // ...nor with a trusted checkpoint alone.
    let checkpoint_only = Trust {
        keys: vec![],
        checkpoint: Some(f.trusted_checkpoint.clone()),
    };
    let failure = verify_dir(&b, &checkpoint_only).failure;
    assert!(
        matches!(
            failure,
            Some(Failure::Truncated { .. })
                | Some(Failure::BadCheckpoint { .. })
                | Some(Failure::InconsistentCheckpoint { .. })
        ),
        "{failure:?}"
    );
}

#[test]
fn sampled_single_byte_changes_are_detected_at_their_record() {
    let (_, f) = fixture();
    let records = fixture::read_records(&f.bundle);
    let mut offsets = Vec::with_capacity(records.len());
    let mut at = 0usize;
    for r in &records {
        offsets.push(at);
        at += r.frame_len();
    }
    let original = std::fs::read(f.bundle.join("records.bin")).expect("records");
    let (_dir, b) = scratch("bytes");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    // Every byte of the first, rotation and last records, plus random bytes elsewhere.
    let mut positions: Vec<usize> = Vec::new();
    for record in [0usize, ROTATE_AT as usize, records.len() - 1] {
        positions.extend(offsets[record]..offsets[record] + records[record].frame_len());
    }
    let sampled: Vec<usize> = positions.iter().copied().step_by(31).collect();
    let mut positions = sampled;
    for _ in 0..30 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        positions.push((state % original.len() as u64) as usize);
    }
    for pos in positions {
        let record = offsets.partition_point(|&o| o <= pos) - 1;
        let mut bytes = original.clone();
        bytes[pos] ^= 0x20;
        std::fs::write(b.join("records.bin"), &bytes).expect("write");
        let failure = verify_dir(&b, &Trust::default()).failure;
        let located = failure.as_ref().and_then(Failure::position);
        assert_eq!(
            located,
            Some(record as u64),
            "byte {pos} of record {record}: {failure:?}"
        );
    }
}

#[test]
fn a_manifest_that_disagrees_with_the_records_is_reported() {
    let (_, f) = fixture();
    for (claimed, expected) in [
        (
            f.size + 5,
            Failure::Truncated {
                expected: f.size + 5,
                found: f.size,
            },
        ),
        (
            f.size - 1,
            Failure::ManifestMismatch {
                manifest: f.size - 1,
                records: f.size,
            },
        ),
    ] {
        let (_dir, b) = scratch("manifest");
        let path = b.join("manifest.json");
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json");
        manifest["size"] = claimed.into();
        std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
        assert_eq!(verify_dir(&b, &Trust::default()).failure, Some(expected));
    }
}
