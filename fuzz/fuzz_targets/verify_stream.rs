//! The streaming verifier on arbitrary bundle contents.
//!
//! Input layout (see docs/FUZZING.md):
//!
//! ```text
//! byte 0       bits 0-5: records per chunk (0 = one chunk for everything)
//!              bit 6: trust the seed bundle's genesis key (`--trusted-key`)
//!              bit 7: trust the seed bundle's earlier checkpoint (size 9)
//! bytes 1-2    checkpoint length L, u16 big-endian (clamped to what is left)
//! next L       the bundle's `checkpoint` note
//! the rest     the bundle's `records.bin`
//! ```
//!
//! The manifest and trusted inputs are those of the seed bundle in
//! `fuzz/seeds/bundle/` (instance `fz`, with a ledger-key rotation). The
//! stream is fed exactly as `verify_bundle` feeds it (FrameReader,
//! `push_chunk`, `frame_error` at a bad frame, `finish`). Properties: no
//! panic; the report does not depend on how the records are chunked; an
//! `ok` report agrees with the checkpoint it was checked against.
#![no_main]

use keyledger::bundle::Manifest;
use keyledger::checkpoint;
use keyledger::record::{FrameReader, ReadError, Record};
use keyledger::verify::{self, Report, SequenceVerifier, Trust};
use libfuzzer_sys::fuzz_target;

const INSTANCE: &str = "fz";
const MANIFEST: &str = include_str!("../seeds/bundle/manifest.json");
const GENESIS_KEY: &str = include_str!("../seeds/bundle/genesis.vkey");
const TRUSTED_CHECKPOINT: &str = include_str!("../seeds/bundle/trusted-checkpoint");

fn manifest() -> Manifest {
    serde_json::from_str(MANIFEST).expect("seed manifest")
}

/// Verifies `records` against `note` in chunks of `chunk` records (0 = all
/// at once), as `keyledger::verify::verify_bundle` does.
fn run(
    records: &[u8],
    note: &[u8],
    trust: &Trust,
    chunk: usize,
) -> Report {
    let mut verifier = SequenceVerifier::new(&manifest(), trust, note).expect("verifier starts");
    let mut reader = FrameReader::new(records);
    let mut pending: Vec<Record> = Vec::new();
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

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (len, rest) = match rest {
        [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        _ => (0, rest),
    };
    let (note, records) = rest.split_at(len.min(rest.len()));
    let chunk = usize::from(mode & 0x3f);
    let mut trust = Trust::default();
    if mode & 0x40 != 0 {
        trust.keys = verify::parse_trusted_keys(GENESIS_KEY).expect("seed genesis key");
    }
    if mode & 0x80 != 0 {
        trust.checkpoint = Some(TRUSTED_CHECKPOINT.to_owned());
    }

    let report = run(records, note, &trust, chunk);
    // Chunking is an implementation detail: one chunk must give the same verdict.
    if chunk != 0 {
        let whole = run(records, note, &trust, 0);
        assert_eq!(
            (&report.failure, report.records, &report.root, report.ok),
            (&whole.failure, whole.records, &whole.root, whole.ok),
            "report depends on chunk size {chunk}"
        );
    }
    assert_eq!(report.ok, report.failure.is_none());
    assert_eq!(report.instance, INSTANCE);
    if report.ok() {
        // An intact verdict means the checkpoint is genuine and matches the records.
        let cp = checkpoint::parse_unverified(note).expect("ok report with unparsable checkpoint");
        assert_eq!(
            cp.size, report.records,
            "ok report, checkpoint size differs"
        );
        assert_eq!(hex_encode(&cp.root), report.root, "ok report, root differs");
        assert_eq!(report.checkpoint_size, Some(cp.size));
        assert!(report.records > 0);
    }
});

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
