//! Tamper trials on a real 10k-event bundle (with a ledger-key rotation in
//! the middle): removed, swapped, duplicated, truncated and forked logs, and
//! sampled single-byte changes, are all detected and located. So are the
//! forgeries of a compromised server, re-chained and re-signed with the
//! instance's own ledger keys so that plain integrity passes: each breaks a
//! rule of docs/LEDGER-FORMAT.md and gets its named, located finding. The
//! exhaustive every-byte trial is
//! `crates/keyledger-verify/tests/tamper_exhaustive.rs`; every "must reject"
//! of §1 is forged on a small log in `crates/keyledger-verify/tests/cli.rs`.

mod common;

use std::collections::HashMap;
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
    let keys_dir = keyledger::ledger::keys_dir(&fixture().1.data, fixture::INSTANCE);
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
    // A `keys` file naming the attacker's key (as bundles once carried)
    // changes nothing: the verifier does not read it.
    std::fs::write(b.join("keys"), format!("{}\n", attacker.note_verifier())).expect("keys");
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

/// The instance's own ledger key `key_id` (the fixture's key files): what a
/// compromised server holds.
fn instance_key(key_id: &str) -> LedgerKey {
    let keys_dir = keyledger::ledger::keys_dir(&fixture().1.data, fixture::INSTANCE);
    LedgerKey::read_file(&keys_dir.join(format!("{key_id}.key"))).expect("ledger key")
}

/// The value of the string member `name` in an event's text (found by
/// search, so it works on events the forgery made malformed).
fn member<'a>(event: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":\"");
    let start = event.rfind(&key).expect("member") + key.len();
    let len = event[start..].find('"').expect("end of member");
    &event[start..start + len]
}

/// What a compromised server could publish: the fixture's log with each
/// event text passed through `edit` (given its position), every record from
/// the first edited one re-chained and re-signed with the instance key it
/// names, and a checkpoint of the result (its body passed through `body`)
/// signed by the key in force at the end. The manifest is unchanged.
fn forge(
    name: &str,
    edit: impl Fn(usize, &str) -> String,
    body: impl Fn(String) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let (dir, b) = scratch(name);
    let mut records = fixture::read_records(&b);
    let mut first = None;
    for (i, record) in records.iter_mut().enumerate() {
        let text = String::from_utf8(record.event.clone()).expect("utf8");
        let edited = edit(i, &text);
        if edited != text {
            record.event = edited.into_bytes();
            first.get_or_insert(i);
        }
    }
    // Without an edited event only the checkpoint is forged.
    let first = first.unwrap_or(records.len());
    let mut keys: HashMap<String, LedgerKey> = HashMap::new();
    for i in first..records.len() {
        let mut text = String::from_utf8(records[i].event.clone()).expect("utf8");
        if i > 0 {
            let prev = chain::to_hex(&records[i - 1].link());
            let old = member(&text, "prev").to_string();
            let at = text.rfind(&format!("\"prev\":\"{old}\"")).expect("prev") + 8;
            text.replace_range(at..at + old.len(), &prev);
        }
        let key_id = member(&text, "ledger_key").to_string();
        let key = keys
            .entry(key_id.clone())
            .or_insert_with(|| instance_key(&key_id));
        records[i].event = text.into_bytes();
        records[i].signature = key.sign_record(&records[i].link());
    }
    fixture::write_records(&b, &records);
    let mut frontier = keyledger::merkle::Frontier::new();
    for r in &records {
        frontier.push(r.leaf_hash());
    }
    let last = records.last().expect("records");
    let checkpoint = keyledger::checkpoint::Checkpoint {
        origin: keyledger::writer::origin_for(fixture::INSTANCE),
        size: records.len() as u64,
        root: frontier.root(),
        extensions: vec![format!("keyledger-chain {}", chain::to_hex(&last.link()))],
    };
    let body = body(checkpoint.body());
    let key = instance_key(member(
        std::str::from_utf8(&last.event).expect("utf8"),
        "ledger_key",
    ));
    use keyledger_ledger::signer::LedgerSigner;
    let signature = key.sign_message(body.as_bytes()).expect("sign");
    let mut blob = key.note_verifier().key_id().to_vec();
    blob.extend_from_slice(&signature);
    use base64::Engine;
    let note = format!(
        "{body}\n\u{2014} {} {}\n",
        checkpoint.origin,
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    std::fs::write(b.join("checkpoint"), note).expect("checkpoint");
    (dir, b)
}

/// Position of the ledger-key rotation record.
fn rotation_position() -> usize {
    fixture::read_records(&fixture().1.bundle)
        .iter()
        .position(|r| {
            keyledger::event::Envelope::parse(&r.event)
                .expect("event")
                .event_type
                == "ledger_key.rotated"
        })
        .expect("a rotation")
}

#[test]
fn a_forgery_that_breaks_no_rule_verifies() {
    // The control: an edit the format allows, re-signed the same way as the
    // forgeries below, passes; so each of them is caught by the rule it
    // breaks, not by the way it was made.
    let (_dir, b) = forge(
        "control",
        |i, text| {
            if i == 1234 {
                let id = member(text, "correlation_id");
                text.replacen(&format!("\"{id}\""), "\"forged-1234\"", 1)
            } else {
                text.to_string()
            }
        },
        |body| body,
    );
    let report = verify_dir(&b, &Trust::default());
    assert!(report.ok(), "{:?}", report.failure);
}

#[test]
fn a_backdated_signed_event_is_time_backwards_at_its_record() {
    let (_dir, b) = forge(
        "backwards",
        |i, text| {
            if i == 2000 {
                let time = member(text, "time");
                text.replacen(time, "2001-01-01T00:00:00.000000Z", 1)
            } else {
                text.to_string()
            }
        },
        |body| body,
    );
    let failure = verify_dir(&b, &full_trust(&fixture().1)).failure;
    assert!(
        matches!(failure, Some(Failure::TimeBackwards { seq: 2000, .. })),
        "{failure:?}"
    );
}

#[test]
fn signed_events_that_break_the_strict_format_are_malformed_at_their_record() {
    type Edit = fn(&str) -> String;
    let cases: [(&str, Edit); 3] = [
        ("a byte after the object", |t| format!("{t} ")),
        ("a duplicate envelope member", |t| {
            t.replacen("{\"instance\":", "{\"instance\":\"acme\",\"instance\":", 1)
        }),
        ("type_version 0", |t| {
            t.replacen("\"type_version\":1", "\"type_version\":0", 1)
        }),
    ];
    for (what, edit) in cases {
        let (_dir, b) = forge(
            "strict",
            |i, text| {
                if i == 3333 {
                    edit(text)
                } else {
                    text.to_string()
                }
            },
            |body| body,
        );
        let failure = verify_dir(&b, &Trust::default()).failure;
        assert!(
            matches!(failure, Some(Failure::Malformed { seq: 3333, .. })),
            "{what}: {failure:?}"
        );
    }
}

#[test]
fn a_signed_event_of_an_unknown_version_is_unknown_event() {
    let (_dir, b) = forge(
        "unknown",
        |i, text| {
            if i == 2500 {
                text.replacen("\"type_version\":1", "\"type_version\":3", 1)
            } else {
                text.to_string()
            }
        },
        |body| body,
    );
    let failure = verify_dir(&b, &Trust::default()).failure;
    assert!(
        matches!(
            failure,
            Some(Failure::UnknownEvent {
                seq: 2500,
                type_version: 3,
                ..
            })
        ),
        "{failure:?}"
    );
}

#[test]
fn a_genesis_of_another_origin_is_bad_genesis() {
    let (_dir, b) = forge(
        "genesis",
        |i, text| {
            if i == 0 {
                text.replacen(
                    "\"origin\":\"keyledger/acme\"",
                    "\"origin\":\"keyledger/zzz\"",
                    1,
                )
            } else {
                text.to_string()
            }
        },
        |body| body,
    );
    // Re-signed with the genesis key itself, so even the trusted key passes.
    let failure = verify_dir(&b, &full_trust(&fixture().1)).failure;
    assert!(
        matches!(failure, Some(Failure::BadGenesis { ref reason }) if reason.contains("origin")),
        "{failure:?}"
    );
}

#[test]
fn a_rotation_that_does_not_name_the_key_in_force_is_bad_rotation() {
    let at = rotation_position();
    let (_dir, b) = forge(
        "rotation",
        |i, text| {
            if i == at {
                let old = member(text, "old_key_id").to_string();
                text.replacen(
                    &format!("\"old_key_id\":\"{old}\""),
                    "\"old_key_id\":\"00000000\"",
                    1,
                )
            } else {
                text.to_string()
            }
        },
        |body| body,
    );
    let failure = verify_dir(&b, &Trust::default()).failure;
    assert!(
        matches!(failure, Some(Failure::BadRotation { seq, .. }) if seq == at as u64),
        "{failure:?}"
    );
}

#[test]
fn a_signed_checkpoint_of_another_shape_is_checkpoint_shape() {
    type Body = fn(String) -> String;
    let bodies: [(&str, Body); 2] = [
        ("an extra line", |body| body + "an extra line\n"),
        ("no keyledger-chain line", |body| {
            let cut = body.find("keyledger-chain ").expect("chain line");
            body[..cut].to_string()
        }),
    ];
    for (what, edit) in bodies {
        // The records are the genuine ones: only the checkpoint is forged.
        let (_dir, b) = forge("shape", |_, text| text.to_string(), edit);
        let failure = verify_dir(&b, &Trust::default()).failure;
        assert!(
            matches!(failure, Some(Failure::CheckpointShape { .. })),
            "{what}: {failure:?}"
        );
    }
}

#[test]
fn a_keys_file_is_ignored_whatever_it_holds() {
    let attacker =
        LedgerKey::generate(&keyledger::writer::origin_for(fixture::INSTANCE)).expect("key");
    for keys in [
        String::new(),
        "garbage\nnot a key at all\n".to_string(),
        format!("{}\n", attacker.note_verifier()),
    ] {
        let (_dir, b) = scratch("keys");
        assert!(!b.join("keys").exists(), "export writes no keys file");
        std::fs::write(b.join("keys"), keys).expect("keys");
        let report = verify_dir(&b, &full_trust(&fixture().1));
        assert!(report.ok(), "{:?}", report.failure);
    }
}

#[test]
fn a_malformed_manifest_is_a_finding_and_an_empty_log_is_truncated() {
    let (_dir, b) = scratch("bad-manifest");
    std::fs::write(b.join("manifest.json"), b"{\"format\":").expect("manifest");
    assert!(matches!(
        verify_dir(&b, &Trust::default()).failure,
        Some(Failure::BadManifest { .. })
    ));
    let (_dir, b) = scratch("empty");
    std::fs::write(b.join("records.bin"), b"").expect("records");
    assert_eq!(
        verify_dir(&b, &Trust::default()).failure,
        Some(Failure::Truncated {
            expected: fixture().1.size,
            found: 0
        })
    );
}
