//! Every single-byte change anywhere in the record data of a 10k-event
//! bundle is detected and located at the record that holds the byte.
//!
//! About 4.7 million trials: run in release mode (`scripts/test` does):
//! `cargo test --release -p keyledger-verify --test tamper_exhaustive -- --ignored`.
//! Each trial resumes the streaming verifier from a snapshot taken just
//! before the tampered record, feeds the tampered frame and the next genuine
//! one, and finishes; the first failure must be at the tampered record.

mod common;

use rayon::prelude::*;

use keyledger_core::record::FrameReader;
use keyledger_core::verify::{SequenceVerifier, Trust};

#[test]
#[ignore = "exhaustive: run in release mode (scripts/test does)"]
fn every_single_byte_change_is_detected_and_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = common::fixture::build(dir.path(), 10_000, Some(5_000), 8_000);
    let manifest = keyledger_verify::manifest_of(&f.bundle).expect("manifest");
    let note = std::fs::read(f.bundle.join("checkpoint")).expect("checkpoint");
    let bytes = std::fs::read(f.bundle.join("records.bin")).expect("records");
    let records = common::fixture::read_records(&f.bundle);
    let trust = Trust::default();

    let mut offsets = Vec::with_capacity(records.len() + 1);
    let mut at = 0usize;
    let mut snapshots = Vec::with_capacity(records.len());
    let mut verifier = SequenceVerifier::new(&manifest, &trust, &note).expect("verifier");
    for r in &records {
        offsets.push(at);
        at += r.frame_len();
        snapshots.push(verifier.clone());
        verifier.push_chunk(vec![r.clone()]);
    }
    offsets.push(at);
    assert!(verifier.finish().ok(), "the untampered bundle must verify");

    let trials: usize = (0..records.len())
        .into_par_iter()
        .map(|i| {
            let frame = &bytes[offsets[i]..offsets[i + 1]];
            let next = if i + 2 < offsets.len() {
                &bytes[offsets[i + 1]..offsets[i + 2]]
            } else {
                &[][..]
            };
            for b in 0..frame.len() {
                let mut buf = Vec::with_capacity(frame.len() + next.len());
                buf.extend_from_slice(frame);
                buf[b] ^= 1 << (b % 8);
                buf.extend_from_slice(next);
                let mut v = snapshots[i].clone();
                let mut reader = FrameReader::new(&buf[..]);
                loop {
                    match reader.next_record() {
                        Ok(Some(r)) => v.push_chunk(vec![r]),
                        Ok(None) => break,
                        Err(e) => {
                            v.frame_error(e.to_string());
                            break;
                        }
                    }
                }
                let report = v.finish();
                let located = report.failure.as_ref().and_then(|f| f.position());
                assert_eq!(
                    located,
                    Some(i as u64),
                    "record {i} byte {b}: {:?}",
                    report.failure
                );
            }
            frame.len()
        })
        .sum();
    assert_eq!(trials, bytes.len());
    eprintln!(
        "{trials} single-byte changes over {} records: all detected and located",
        records.len()
    );
}
