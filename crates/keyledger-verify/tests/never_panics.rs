//! The verifier never panics on arbitrary bytes, and every single mutation of
//! a genuine bundle is reported as a failure.
//!
//! A fast, stable-toolchain complement of the cargo-fuzz targets in `fuzz/`
//! (see `docs/FUZZING.md`): the same four entry points (record frames and
//! event envelopes, the streaming `SequenceVerifier`, Merkle proof
//! verification, checkpoint notes and verifier keys) on proptest-generated
//! input, both arbitrary and derived from a real 70-event bundle with a
//! ledger-key rotation (72 records, so the verifier's parallel path runs).

mod common;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::fixture::{self, Fixture};
use keyledger_core::bundle::Manifest;
use keyledger_core::checkpoint::{self, NoteSignerKey, NoteVerifierKey};
use keyledger_core::event::{self, Envelope, InstanceCreated, LedgerKeyRotated, StrictEnvelope};
use keyledger_core::merkle::{
    Hash, MemoryNodes, consistency_proof, consistency_proof_len, empty_root, inclusion_proof,
    inclusion_proof_len, leaf_hash, root_at, verify_consistency, verify_inclusion,
};
use keyledger_core::record::{FrameError, FrameReader, ReadError, Record};
use keyledger_core::verify::{self, Report, SequenceVerifier, Trust};
use proptest::prelude::*;
use proptest::sample::Index;

const EVENTS: u64 = 70;

/// Cases per property: the default keeps the suite fast; `PROPTEST_CASES`
/// runs longer soaks (e.g. `PROPTEST_CASES=20000 cargo test --release -p
/// keyledger-verify --test never_panics`).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The genuine bundle every mutation starts from, and its files' bytes.
struct Genuine {
    _dir: tempfile::TempDir,
    fixture: Fixture,
    manifest: Manifest,
    records: Vec<u8>,
    note: Vec<u8>,
    keys: Vec<NoteVerifierKey>,
}

fn genuine() -> &'static Genuine {
    static GENUINE: OnceLock<Genuine> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture = fixture::build(dir.path(), EVENTS, Some(40), 30);
        let read = |name: &str| std::fs::read(fixture.bundle.join(name)).expect("bundle file");
        let manifest = keyledger_verify::manifest_of(&fixture.bundle).expect("manifest");
        let keys = verify::parse_trusted_keys(&fixture.ledger_keys.join("\n")).expect("keys");
        let genuine = Genuine {
            manifest,
            records: read("records.bin"),
            note: read("checkpoint"),
            keys,
            fixture,
            _dir: dir,
        };
        let report = stream(&genuine.records, &genuine.note, &Trust::default(), 7);
        assert!(report.ok(), "genuine bundle fails: {:?}", report.failure);
        assert_eq!(report.key_rotations, 1);
        assert_eq!(genuine.keys.len(), 2);
        genuine
    })
}

/// Streams `records` through a `SequenceVerifier` with its public API
/// (`push_chunk`, `frame_error`, `finish`), `chunk` records at a time
/// (0 = one chunk).
fn stream(records: &[u8], note: &[u8], trust: &Trust, chunk: usize) -> Report {
    let mut verifier = SequenceVerifier::new(&genuine_manifest(), trust, note).expect("verifier");
    let mut reader = FrameReader::new(records);
    let mut pending = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                pending.push(record);
                if chunk != 0 && pending.len() == chunk {
                    verifier.push_chunk(std::mem::take(&mut pending));
                    if verifier.failed() {
                        break;
                    }
                }
            }
            Ok(None) => break,
            Err(ReadError::Frame { source, .. }) => {
                verifier.push_chunk(std::mem::take(&mut pending));
                verifier.frame_error(source.to_string());
                break;
            }
            Err(ReadError::Io(e)) => panic!("in-memory read failed: {e}"),
        }
    }
    verifier.push_chunk(pending);
    verifier.finish()
}

/// The manifest of the fixture's instance (known without building it).
fn genuine_manifest() -> Manifest {
    Manifest {
        format: keyledger_core::bundle::BUNDLE_FORMAT.into(),
        instance: fixture::INSTANCE.into(),
        origin: keyledger_ledger::writer::origin_for(fixture::INSTANCE),
        size: EVENTS + 2, // plus genesis and the rotation record
    }
}

/// A reader handing out 1-13 bytes per call, with spurious `Interrupted`s.
struct Trickle<'a> {
    data: &'a [u8],
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(5) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = (1 + self.calls % 13).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

type Outcome = (Vec<Record>, Option<(u64, FrameError)>);

/// Decodes a stream with `Record::decode_frame`, checking each frame
/// re-encodes to its bytes.
fn decode_all(data: &[u8]) -> Outcome {
    let mut records = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match Record::decode_frame(&data[at..]) {
            Ok((record, used)) => {
                let mut again = Vec::new();
                record.encode_frame(&mut again);
                assert_eq!(again, &data[at..at + used]);
                assert_eq!(used, record.frame_len());
                records.push(record);
                at += used;
            }
            Err(e) => return (records, Some((at as u64, e))),
        }
    }
    (records, None)
}

fn read_all(reader: impl Read) -> Outcome {
    let mut reader = FrameReader::new(reader);
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => return (records, None),
            Err(ReadError::Frame { offset, source }) => return (records, Some((offset, source))),
            Err(ReadError::Io(e)) => panic!("in-memory read failed: {e}"),
        }
    }
}

/// Frames and envelopes: both decoders agree, and every event parses or not
/// without panicking.
fn check_frames(data: &[u8]) {
    let decoded = decode_all(data);
    assert_eq!(
        decoded,
        read_all(data),
        "decode_frame and FrameReader disagree"
    );
    assert_eq!(
        decoded,
        read_all(Trickle { data, calls: 0 }),
        "FrameReader depends on read sizes"
    );
    for record in &decoded.0 {
        let _ = (record.link(), record.leaf_hash());
        if let Ok(envelope) = Envelope::parse(&record.event) {
            let _ = envelope.payload_as::<InstanceCreated>();
            let _ = envelope.payload_as::<LedgerKeyRotated>();
            let _ = event::check_payload(
                &envelope.event_type,
                envelope.type_version,
                envelope.payload.get(),
            );
        }
        if let Ok(strict) = StrictEnvelope::parse(&record.event) {
            let _ = event::check_payload(&strict.event_type, strict.type_version, strict.payload);
        }
    }
    let _ = Envelope::parse(data);
    let _ = StrictEnvelope::parse(data);
}

/// Checkpoint notes and keys: no panic, and a checkpoint that parses has a
/// body equal to its signed text.
fn check_note(data: &[u8], verifiers: &[NoteVerifierKey]) -> Option<checkpoint::Checkpoint> {
    for line in String::from_utf8_lossy(data).lines() {
        let _ = NoteVerifierKey::parse(line);
        let _ = NoteSignerKey::parse(line);
    }
    let unverified = checkpoint::parse_unverified(data);
    if let (Ok(cp), Ok((text, _))) = (&unverified, checkpoint::parse_note(data)) {
        assert_eq!(cp.body(), text, "checkpoint body does not round-trip");
    }
    let verified = checkpoint::parse_and_verify(data, verifiers).ok();
    if let Some(cp) = &verified {
        assert_eq!(Some(cp), unverified.as_ref().ok());
    }
    verified
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    /// XOR the byte at a position with a non-zero value.
    Xor(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    /// Keep only a prefix (strictly shorter).
    Truncate(Index),
    /// Append one or more bytes.
    Append(Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Edit::Xor(i, x)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..80).prop_map(Edit::Append),
    ]
}

fn apply(edit: &Edit, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if bytes.is_empty() && !matches!(edit, Edit::Insert(..) | Edit::Append(_)) {
        return out;
    }
    match edit {
        Edit::Xor(i, x) => out[i.index(bytes.len())] ^= x,
        Edit::Insert(i, b) => out.insert(i.index(bytes.len() + 1), *b),
        Edit::Delete(i) => {
            out.remove(i.index(bytes.len()));
        }
        Edit::Truncate(i) => out.truncate(i.index(bytes.len())),
        Edit::Append(extra) => out.extend_from_slice(extra),
    }
    out
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>()
}

/// Tree sizes and indices: small, near the u64 edges, or anything.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..70u64,
        (0..70u64).prop_map(|d| u64::MAX - d),
        any::<u64>()
    ]
}

fn verify_scratch(dir: &Path) -> Report {
    keyledger_verify::verify_bundle(dir, &Trust::default(), &|_| {}).expect("verify ran")
}

fn scratch_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundle");
    fixture::copy_bundle(&genuine().fixture.bundle, &path);
    (dir, path)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_frames_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_frames(&data);
    }

    #[test]
    fn edited_frames_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let data = edits.iter().fold(genuine().records.clone(), |d, e| apply(e, &d));
        check_frames(&data);
    }

    #[test]
    fn arbitrary_checkpoints_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(check_note(&data, &genuine().keys).is_none());
    }

    #[test]
    fn edited_checkpoints_never_verify(edit in edit()) {
        let g = genuine();
        prop_assert!(check_note(&g.note, &g.keys).is_some());
        let note = apply(&edit, &g.note);
        prop_assert!(check_note(&note, &g.keys).is_none(), "edited checkpoint verified");
    }

    #[test]
    fn arbitrary_keys_never_panic(text in "\\PC{0,120}", suffix in "[A-Za-z0-9+/=]{0,60}") {
        let _ = NoteVerifierKey::parse(&text);
        let _ = NoteSignerKey::parse(&text);
        let _ = NoteVerifierKey::parse(&format!("keyledger/acme+0011aaff+{suffix}"));
        let _ = verify::parse_trusted_keys(&text);
    }

    #[test]
    fn arbitrary_proofs_never_panic(
        leaf in hash(), index in size(), tree in size(),
        proof in prop::collection::vec(hash(), 0..70), roots in (hash(), hash()),
        size1 in size(), size2 in size(),
    ) {
        let (root1, root2) = roots;
        if verify_inclusion(&leaf, index, tree, &proof, &root1).is_ok() {
            prop_assert_eq!(inclusion_proof_len(index, tree), Some(proof.len()));
        }
        if verify_consistency(size1, size2, &proof, &root1, &root2).is_ok() {
            prop_assert_eq!(consistency_proof_len(size1, size2), Some(proof.len()));
            prop_assert!(size1 != 0 || root1 == empty_root());
            prop_assert!(size1 != size2 || root1 == root2);
        }
    }

    #[test]
    fn honest_proofs_verify_and_flipped_ones_fail(
        n in 1u64..200, pick in (any::<Index>(), any::<Index>(), any::<Index>(), any::<Index>()),
        flip in (any::<Index>(), 0u8..=255),
    ) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let (nodes, frontier) = MemoryNodes::from_leaves(leaves.iter().copied()).expect("tree");
        prop_assert_eq!(root_at(&nodes, n).expect("root"), frontier.root());
        let size = 1 + pick.0.index(n as usize) as u64;
        let index = pick.1.index(size as usize) as u64;
        let root = root_at(&nodes, size).expect("root");
        let mut proof = inclusion_proof(&nodes, index, size).expect("proof");
        let leaf = leaves[index as usize];
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
        let (bit, byte) = (flip.1 % 8, usize::from(flip.1 / 8));
        if !proof.is_empty() {
            let at = flip.0.index(proof.len());
            proof[at][byte] ^= 1 << bit;
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_err());
        }
        let size2 = pick.2.index(n as usize + 1) as u64;
        let size1 = pick.3.index(size2 as usize + 1) as u64;
        let (root1, root2) = (root_at(&nodes, size1).expect("r1"), root_at(&nodes, size2).expect("r2"));
        let mut proof = consistency_proof(&nodes, size1, size2).expect("proof");
        prop_assert!(verify_consistency(size1, size2, &proof, &root1, &root2).is_ok());
        if !proof.is_empty() {
            let at = flip.0.index(proof.len());
            proof[at][byte] ^= 1 << bit;
            prop_assert!(verify_consistency(size1, size2, &proof, &root1, &root2).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_streams_never_panic(
        note in prop::collection::vec(any::<u8>(), 0..300),
        records in prop::collection::vec(any::<u8>(), 0..3000),
        chunk in 0usize..5,
    ) {
        let report = stream(&records, &note, &Trust::default(), chunk);
        prop_assert!(!report.ok());
    }

    #[test]
    fn edited_streams_fail_whatever_the_chunking(
        edits in prop::collection::vec(edit(), 1..3),
        on_note in any::<bool>(),
        chunk in 1usize..9,
        trusted in any::<bool>(),
    ) {
        let g = genuine();
        let (mut records, mut note) = (g.records.clone(), g.note.clone());
        let target = if on_note { &mut note } else { &mut records };
        *target = edits.iter().fold(target.clone(), |d, e| apply(e, &d));
        prop_assume!(records != g.records || note != g.note);
        let trust = if trusted {
            Trust {
                keys: verify::parse_trusted_keys(&g.fixture.trusted_key).expect("key"),
                checkpoint: Some(g.fixture.trusted_checkpoint.clone()),
            }
        } else {
            Trust::default()
        };
        let report = stream(&records, &note, &trust, chunk);
        prop_assert!(!report.ok(), "edited bundle verified: {edits:?}");
        let whole = stream(&records, &note, &trust, 0);
        prop_assert_eq!(&report.failure, &whole.failure, "verdict depends on chunking");
        prop_assert_eq!(report.records, whole.records);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// The issue's acceptance test: a single random change to a genuine
    /// bundle's records or checkpoint, verified from disk, always fails, with
    /// the same verdict as the in-memory stream.
    #[test]
    fn single_mutations_of_a_genuine_bundle_fail(edit in edit(), on_note in any::<bool>()) {
        let g = genuine();
        let (_dir, bundle) = scratch_copy();
        let (name, original) = if on_note {
            ("checkpoint", &g.note)
        } else {
            ("records.bin", &g.records)
        };
        let mutated = apply(&edit, original);
        std::fs::write(bundle.join(name), &mutated).expect("write");
        let report = verify_scratch(&bundle);
        prop_assert!(!report.ok(), "mutated {name} verified: {edit:?}");
        prop_assert!(report.failure.is_some());
        // verify_bundle and the plain push_chunk stream agree on the verdict.
        let (records, note) = if on_note {
            (&g.records, &mutated)
        } else {
            (&mutated, &g.note)
        };
        let streamed = stream(records, note, &Trust::default(), 0);
        prop_assert_eq!(&report.failure, &streamed.failure);
        prop_assert_eq!(report.records, streamed.records);
    }
}

#[test]
fn genuine_bundle_verifies_from_disk() {
    let g = genuine();
    let report = verify_scratch(&g.fixture.bundle);
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, g.fixture.size);
    assert_eq!(g.manifest, genuine_manifest());
}

#[test]
fn deeply_nested_events_are_refused_without_overflowing_the_stack() {
    let max = keyledger_core::record::MAX_EVENT_BYTES;
    let prefix = br#"{"instance":"acme","seq":0,"time":"2026-01-01T00:00:00.000000Z","type":"instance.created","type_version":1,"actor":{"principal":"p","role":"system","auth":"internal"},"correlation_id":"c","payload":"#;
    let mut nested = prefix.to_vec();
    nested.resize(max, b'[');
    let mut nested_objects = prefix.to_vec();
    while nested_objects.len() + 5 < max {
        nested_objects.extend_from_slice(br#"{"a":"#);
    }
    let mut frames = Vec::new();
    for event in [vec![b'['; max], vec![b'{'; max], nested, nested_objects] {
        assert!(Envelope::parse(&event).is_err());
        assert!(StrictEnvelope::parse(&event).is_err());
        Record {
            event,
            signature: [0; 64],
        }
        .encode_frame(&mut frames);
    }
    check_frames(&frames);
    let report = stream(&frames, &genuine().note, &Trust::default(), 0);
    assert!(matches!(
        report.failure,
        Some(verify::Failure::Malformed { seq: 0, .. })
    ));
}
