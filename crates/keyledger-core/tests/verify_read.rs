//! `verify_records` and `replay_policy` over a `Read`, with and without the
//! `parallel` feature (`cargo test -p keyledger-core` and `cargo test -p
//! keyledger-core --no-default-features` run this same file).
//!
//! Each build's report on a genuine log and on tampered copies of it must
//! equal the report of a plain reference: the public `SequenceVerifier` fed
//! one record at a time, which neither build's streaming code is involved
//! in. Equal to the same reference, the two builds give the same reports.
//! The log is built with core alone, spans three verifier chunks and
//! rotates its ledger key inside the second, so the pipeline's key snapshot
//! (taken before the previous chunk is applied) misses the new key.

use std::io::{self, Read};

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use keyledger_core::bundle::{Manifest, RECORDS_FILE};
use keyledger_core::chain::{self, GENESIS_PREV, Link};
use keyledger_core::checkpoint::{Checkpoint, NoteVerifierKey};
use keyledger_core::event::{
    Actor, EnvelopeOut, EventPayload, InstanceCreated, KeyEnabled, LedgerKeyRotated,
};
use keyledger_core::merkle::Frontier;
use keyledger_core::record::{FrameReader, ReadError, Record};
use keyledger_core::verify::{self, CHUNK, Failure, Report, SequenceVerifier, Trust, VerifyError};

const INSTANCE: &str = "streams";
const ORIGIN: &str = "keyledger/streams";
/// Records in the log: two full chunks and part of a third.
const RECORDS: u64 = 2 * CHUNK as u64 + 300;
/// Position of the ledger-key rotation (inside the second chunk).
const ROTATION: u64 = CHUNK as u64 + 17;

/// A log written with core alone, as the writer would: envelope bytes,
/// chain links, record signatures, checkpoint.
struct Log {
    records: Vec<Record>,
    note: Vec<u8>,
}

fn key_id(key: &SigningKey) -> String {
    hex::encode(NoteVerifierKey::new(ORIGIN, key.verifying_key()).key_id())
}

fn public_b64(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes())
}

fn event_bytes<P: EventPayload>(
    seq: u64,
    payload: &P,
    signer: &SigningKey,
    prev: &Link,
) -> Vec<u8> {
    let payload = serde_json::value::to_raw_value(payload).expect("payload");
    let actor = Actor::system();
    let out = EnvelopeOut {
        instance: INSTANCE,
        seq,
        time: "2026-12-07T12:00:00.000000Z",
        event_type: P::TYPE,
        type_version: P::VERSION,
        actor: &actor,
        correlation_id: &format!("c-{seq}"),
        payload: &payload,
        ledger_key: &key_id(signer),
        prev: &chain::to_hex(prev),
    };
    serde_json::to_vec(&out).expect("envelope")
}

/// The log, built once for all tests.
fn log() -> &'static Log {
    static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
    LOG.get_or_init(build)
}

fn build() -> Log {
    let first = SigningKey::from_bytes(&[1; 32]);
    let second = SigningKey::from_bytes(&[2; 32]);
    let mut signer = &first;
    let mut prev = GENESIS_PREV;
    let mut frontier = Frontier::new();
    let mut records = Vec::new();
    for seq in 0..RECORDS {
        let event = if seq == 0 {
            let genesis = InstanceCreated {
                origin: ORIGIN.into(),
                ledger_key_id: key_id(&first),
                ledger_public_key: public_b64(&first),
                initial_admin_id: "admin".into(),
                initial_admin_public_key: public_b64(&SigningKey::from_bytes(&[3; 32])),
            };
            event_bytes(seq, &genesis, signer, &prev)
        } else if seq == ROTATION {
            let rotation = LedgerKeyRotated {
                old_key_id: key_id(&first),
                new_key_id: key_id(&second),
                new_public_key: public_b64(&second),
            };
            event_bytes(seq, &rotation, signer, &prev)
        } else {
            let enabled = KeyEnabled {
                key_id: format!("key-{seq}"),
            };
            event_bytes(seq, &enabled, signer, &prev)
        };
        let link = chain::link(&event);
        let signature = signer.sign(&chain::signing_message(&link)).to_bytes();
        let record = Record { event, signature };
        frontier.push(record.leaf_hash());
        records.push(record);
        prev = link;
        if seq == ROTATION {
            signer = &second;
        }
    }
    let checkpoint = Checkpoint {
        origin: ORIGIN.into(),
        size: RECORDS,
        root: frontier.root(),
        extensions: vec![format!("keyledger-chain {}", chain::to_hex(&prev))],
    };
    Log {
        records,
        note: checkpoint.sign(ORIGIN, signer).into_bytes(),
    }
}

fn manifest(size: u64) -> Manifest {
    Manifest {
        format: keyledger_core::bundle::BUNDLE_FORMAT.into(),
        instance: INSTANCE.into(),
        origin: ORIGIN.into(),
        size,
    }
}

fn manifest_bytes(manifest: &Manifest) -> Vec<u8> {
    serde_json::to_vec_pretty(manifest).expect("manifest json")
}

fn frames(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        record.encode_frame(&mut out);
    }
    out
}

/// The reference: the public streaming verifier, one record per chunk.
fn reference(log: &Log, manifest: &Manifest, bytes: &[u8]) -> Report {
    let mut verifier = SequenceVerifier::new(manifest, &Trust::default(), &log.note).expect("new");
    let mut reader = FrameReader::new(bytes);
    loop {
        match reader.next_record() {
            Ok(Some(record)) => verifier.push_chunk(vec![record]),
            Ok(None) => break,
            Err(ReadError::Frame { source, .. }) => {
                verifier.frame_error(source.to_string());
                break;
            }
            Err(ReadError::Io(e)) => panic!("reading a slice: {e}"),
        }
    }
    verifier.finish()
}

fn streamed(log: &Log, manifest: &Manifest, bytes: &[u8]) -> Report {
    verify::verify_records(
        &manifest_bytes(manifest),
        &Trust::default(),
        &log.note,
        bytes,
        &|_| {},
    )
    .expect("verify ran")
}

fn assert_same(what: &str, got: &Report, want: &Report) {
    assert_eq!(
        serde_json::to_value(got).expect("json"),
        serde_json::to_value(want).expect("json"),
        "{what}"
    );
}

#[test]
fn streamed_reports_equal_the_reference_on_genuine_and_tampered_logs() {
    let log = log();
    let genuine = frames(&log.records);
    let full = manifest(RECORDS);

    let report = streamed(log, &full, &genuine);
    assert!(report.ok(), "genuine log fails: {:?}", report.failure);
    assert_eq!(report.records, RECORDS);
    assert_eq!(report.key_rotations, 1);
    assert_same("genuine", &report, &reference(log, &full, &genuine));

    // (what, records bytes, manifest size, expected failure)
    let mut cases: Vec<(String, Vec<u8>, u64, Failure)> = Vec::new();
    for seq in [3, CHUNK as u64 - 1, CHUNK as u64, ROTATION + 1, RECORDS - 1] {
        let mut records = log.records.clone();
        records[seq as usize].signature[7] ^= 1;
        cases.push((
            format!("signature flipped at {seq}"),
            frames(&records),
            RECORDS,
            Failure::BadSignature { seq },
        ));
    }
    for seq in [1, ROTATION, 2 * CHUNK as u64 + 5] {
        let mut records = log.records.clone();
        records.remove(seq as usize);
        cases.push((
            format!("record {seq} removed"),
            frames(&records),
            RECORDS,
            Failure::Removed {
                seq,
                found: seq + 1,
            },
        ));
    }
    {
        let mut records = log.records.clone();
        let copy = records[CHUNK - 1].clone();
        records.insert(CHUNK, copy);
        cases.push((
            "duplicate across a chunk boundary".into(),
            frames(&records),
            RECORDS,
            Failure::Duplicated {
                seq: CHUNK as u64 - 1,
                position: CHUNK as u64,
            },
        ));
    }
    {
        let mut records = log.records.clone();
        let event = String::from_utf8(records[ROTATION as usize + 2].event.clone()).expect("utf8");
        records[ROTATION as usize + 2].event = event.replace("\"key-", "\"kez-").into_bytes();
        cases.push((
            "event edited after the rotation, not re-signed".into(),
            frames(&records),
            RECORDS,
            Failure::BadSignature { seq: ROTATION + 2 },
        ));
        // Re-signed by the key in force: the next record's link breaks.
        let edited = &mut records[ROTATION as usize + 2];
        let link = chain::link(&edited.event);
        edited.signature = SigningKey::from_bytes(&[2; 32])
            .sign(&chain::signing_message(&link))
            .to_bytes();
        cases.push((
            "event edited after the rotation, re-signed".into(),
            frames(&records),
            RECORDS,
            Failure::ChainBroken { seq: ROTATION + 3 },
        ));
    }
    {
        let mut bytes = genuine.clone();
        bytes.truncate(bytes.len() - 10);
        cases.push((
            "last frame cut short".into(),
            bytes,
            RECORDS,
            Failure::Malformed {
                seq: RECORDS - 1,
                reason: "frame truncated: needed 10 more bytes".into(),
            },
        ));
    }
    cases.push((
        "manifest claims more".into(),
        genuine.clone(),
        RECORDS + 1,
        Failure::Truncated {
            expected: RECORDS + 1,
            found: RECORDS,
        },
    ));
    cases.push((
        "an empty records file".into(),
        Vec::new(),
        RECORDS,
        Failure::Truncated {
            expected: RECORDS,
            found: 0,
        },
    ));
    for (what, bytes, size, expected) in &cases {
        let manifest = manifest(*size);
        let got = streamed(log, &manifest, bytes);
        assert_eq!(got.failure.as_ref(), Some(expected), "{what}");
        assert_same(what, &got, &reference(log, &manifest, bytes));
    }
}

#[test]
fn progress_counts_the_bytes_consumed() {
    let log = log();
    let bytes = frames(&log.records);
    let seen = std::cell::RefCell::new(Vec::new());
    let report = verify::verify_records(
        &manifest_bytes(&manifest(RECORDS)),
        &Trust::default(),
        &log.note,
        bytes.as_slice(),
        &|done| seen.borrow_mut().push(done),
    )
    .expect("verify ran");
    assert!(report.ok());
    let seen = seen.into_inner();
    // One call per chunk: two full chunks and the rest.
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(bytes.len() as u64));
}

/// A reader that fails after `left` bytes.
struct FailingAfter<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl Read for FailingAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.left).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_read_error_is_an_error_naming_the_records_file() {
    let log = log();
    let bytes = frames(&log.records);
    let reader = FailingAfter {
        bytes: &bytes,
        left: bytes.len() / 2,
    };
    let result = verify::verify_records(
        &manifest_bytes(&manifest(RECORDS)),
        &Trust::default(),
        &log.note,
        reader,
        &|_| {},
    );
    match result {
        Err(VerifyError::Io { file, source }) => {
            assert_eq!(file, RECORDS_FILE);
            assert_eq!(source.to_string(), "disk on fire");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let reader = FailingAfter {
        bytes: &bytes,
        left: bytes.len() / 2,
    };
    assert!(matches!(
        verify::replay_policy(reader, &|_| {}),
        Err(VerifyError::Io { .. })
    ));
}

#[test]
fn policy_replay_reads_every_record_and_refuses_a_torn_frame() {
    let log = log();
    let bytes = frames(&log.records);
    let report = verify::replay_policy(bytes.as_slice(), &|_| {}).expect("replay");
    assert_eq!(report.events, RECORDS);
    let torn = &bytes[..bytes.len() - 1];
    match verify::replay_policy(torn, &|_| {}) {
        Err(VerifyError::Io { file, source }) => {
            assert_eq!(file, RECORDS_FILE);
            assert_eq!(source.kind(), io::ErrorKind::InvalidData);
        }
        other => panic!("expected a framing error, got {other:?}"),
    }
}
