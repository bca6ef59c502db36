//! Offline verification of a ledger: chain, signatures, key authority,
//! sequence, Merkle root and checkpoints, streaming in flat memory and using
//! every core.
//!
//! The verifier trusts nothing but what the caller passes as trusted (a
//! ledger public key and/or an earlier checkpoint). Every failure is located:
//! the report names the first bad position and the kind of failure.

mod checks;
pub mod policy;
mod sequence;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Serialize;

use crate::bundle::{self, Manifest};
use crate::checkpoint::{self, Checkpoint, NoteVerifierKey};
use crate::merkle::Hash;
use crate::record::{FrameReader, ReadError, Record};

pub use policy::{Finding, PolicyReplay, PolicyReport};
pub use sequence::SequenceVerifier;

/// Records verified per parallel step.
pub const CHUNK: usize = 4096;

/// What the caller trusts, beyond the bundle itself.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Ledger public keys the genesis record must be signed by (any one).
    pub keys: Vec<NoteVerifierKey>,
    /// An earlier checkpoint the log must extend.
    pub checkpoint: Option<String>,
}

/// The kind of a verification failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    #[error("record {seq} is malformed: {reason}")]
    Malformed { seq: u64, reason: String },
    #[error("record {seq} belongs to instance {found:?}, not {expected:?}")]
    WrongInstance {
        seq: u64,
        expected: String,
        found: String,
    },
    #[error("record {seq} is missing (the next record present is {found})")]
    Removed { seq: u64, found: u64 },
    #[error("records are reordered at position {seq} (found seq {found})")]
    Reordered { seq: u64, found: u64 },
    #[error("record {seq} is duplicated at position {position}")]
    Duplicated { seq: u64, position: u64 },
    #[error("chain broken at record {seq}: its prev does not match the previous record")]
    ChainBroken { seq: u64 },
    #[error("bad signature on record {seq}")]
    BadSignature { seq: u64 },
    #[error(
        "record {seq} is signed by key {key_id}, which is not the ledger key in force ({expected})"
    )]
    UnauthorizedKey {
        seq: u64,
        key_id: String,
        expected: String,
    },
    #[error("record 0 is not a valid genesis record: {reason}")]
    BadGenesis { reason: String },
    #[error("the log's genesis key {key_id} is not a trusted key")]
    UntrustedKey { key_id: String },
    #[error("log truncated: expected at least {expected} records, found {found}")]
    Truncated { expected: u64, found: u64 },
    #[error("checkpoint is invalid: {reason}")]
    BadCheckpoint { reason: String },
    #[error("checkpoint size {checkpoint} does not match the {records} records")]
    CheckpointSizeMismatch { checkpoint: u64, records: u64 },
    #[error("Merkle root mismatch at size {size}: the records do not match the checkpoint")]
    RootMismatch { size: u64 },
    #[error("chain head mismatch at size {size}: the checkpoint names another head")]
    ChainHeadMismatch { size: u64 },
    #[error("log is inconsistent with the trusted checkpoint of size {size}")]
    InconsistentCheckpoint { size: u64 },
    #[error("the manifest says {manifest} records but the bundle holds {records}")]
    ManifestMismatch { manifest: u64, records: u64 },
}

impl Failure {
    /// The first bad position, where the failure has one.
    pub fn position(&self) -> Option<u64> {
        match self {
            Failure::Malformed { seq, .. }
            | Failure::WrongInstance { seq, .. }
            | Failure::Removed { seq, .. }
            | Failure::Reordered { seq, .. }
            | Failure::ChainBroken { seq }
            | Failure::BadSignature { seq }
            | Failure::UnauthorizedKey { seq, .. } => Some(*seq),
            Failure::Duplicated { position, .. } => Some(*position),
            Failure::BadGenesis { .. } | Failure::UntrustedKey { .. } => Some(0),
            Failure::Truncated { found, .. } => Some(*found),
            Failure::RootMismatch { size }
            | Failure::ChainHeadMismatch { size }
            | Failure::InconsistentCheckpoint { size } => Some(*size),
            Failure::BadCheckpoint { .. }
            | Failure::CheckpointSizeMismatch { .. }
            | Failure::ManifestMismatch { .. } => None,
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when no failure was found.
    pub ok: bool,
    pub instance: String,
    pub records: u64,
    /// Hex root of all verified records.
    pub root: String,
    pub checkpoint_size: Option<u64>,
    pub key_rotations: u64,
    pub failure: Option<Failure>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.ok && self.failure.is_none()
    }
}

/// Errors that stop verification before any verdict (unreadable input).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("trusted input is invalid: {0}")]
    Trust(String),
}

/// Verifies a bundle directory. `progress` is called with the number of
/// bytes consumed so far.
pub fn verify_bundle(
    dir: &Path,
    trust: &Trust,
    progress: &dyn Fn(u64),
) -> Result<Report, VerifyError> {
    let manifest = bundle::read_manifest(dir)?;
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| VerifyError::Io {
            file: path.display().to_string(),
            source,
        })
    };
    let keys_text = read(bundle::KEYS_FILE)?;
    let published = parse_keys(&String::from_utf8_lossy(&keys_text));
    let checkpoint_note = read(bundle::CHECKPOINT_FILE)?;
    let records_path = dir.join(bundle::RECORDS_FILE);
    let file = File::open(&records_path).map_err(|source| VerifyError::Io {
        file: records_path.display().to_string(),
        source,
    })?;
    let mut verifier = SequenceVerifier::new(&manifest, trust, &published, &checkpoint_note)?;
    // Three stages overlap: a reader thread frames records; the parallel
    // checks (parse, hashes, signatures) of chunk k+1 run on the pool while
    // the ordered checks of chunk k run here.
    let (chunks, incoming) = crossbeam_channel::bounded::<Chunk>(2);
    let reader = std::thread::Builder::new()
        .name("verify-reader".into())
        .spawn(move || read_chunks(file, &chunks))
        .map_err(|source| VerifyError::Io {
            file: records_path.display().to_string(),
            source,
        })?;
    let mut pending: Option<Vec<checks::Checked>> = None;
    let mut end: Option<Result<Option<String>, std::io::Error>> = None;
    while end.is_none() && !verifier.failed() {
        let next = incoming.recv().unwrap_or(Chunk::End(Ok(None)));
        let (records, offset) = match next {
            Chunk::Records(records, offset) => (records, Some(offset)),
            Chunk::End(result) => {
                end = Some(result);
                (Vec::new(), None)
            }
        };
        let candidates = verifier.candidates();
        let previous = pending.take();
        let (checked, ()) = rayon::join(
            || checks::check_chunk(records, &candidates),
            || {
                if let Some(previous) = previous {
                    verifier.apply_checked(previous);
                }
            },
        );
        pending = Some(checked);
        if let Some(offset) = offset {
            progress(offset);
        }
    }
    drop(incoming);
    let _ = reader.join();
    if let Some(last) = pending.take() {
        verifier.apply_checked(last);
    }
    match end {
        Some(Err(source)) => {
            return Err(VerifyError::Io {
                file: records_path.display().to_string(),
                source,
            });
        }
        Some(Ok(Some(frame_error))) => verifier.frame_error(frame_error),
        _ => {}
    }
    Ok(verifier.finish())
}

/// Replays the governance rules over a bundle's records (see
/// [`policy`]), streaming them from `records.bin` one at a time: only the
/// projections and the findings stay in memory. Run it on a bundle that
/// [`verify_bundle`] found intact: the replay trusts the records' order and
/// signatures. `progress` is called with the bytes consumed so far.
pub fn verify_policy(dir: &Path, progress: &dyn Fn(u64)) -> Result<PolicyReport, VerifyError> {
    let records_path = dir.join(bundle::RECORDS_FILE);
    let io = |source: std::io::Error| VerifyError::Io {
        file: records_path.display().to_string(),
        source,
    };
    let file = File::open(&records_path).map_err(io)?;
    let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, file));
    let mut replay = PolicyReplay::new();
    let mut seq = 0u64;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                replay.push(seq, &record.event);
                seq += 1;
                if seq.is_multiple_of(CHUNK as u64) {
                    progress(reader.offset());
                }
            }
            Ok(None) => break,
            Err(ReadError::Io(e)) => return Err(io(e)),
            Err(frame) => {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    frame.to_string(),
                )));
            }
        }
    }
    progress(reader.offset());
    Ok(replay.finish())
}

/// What the reader thread hands over.
enum Chunk {
    /// Up to [`CHUNK`] records and the byte offset after them.
    Records(Vec<Record>, u64),
    /// End of input: a framing error's description, or an I/O error.
    End(Result<Option<String>, std::io::Error>),
}

fn read_chunks(file: File, out: &crossbeam_channel::Sender<Chunk>) {
    let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, file));
    let mut chunk = Vec::with_capacity(CHUNK);
    let end = loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                chunk.push(record);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if out.send(Chunk::Records(full, reader.offset())).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => break Ok(None),
            Err(ReadError::Frame { source, .. }) => break Ok(Some(source.to_string())),
            Err(ReadError::Io(e)) => break Err(e),
        }
    };
    if !chunk.is_empty() && out.send(Chunk::Records(chunk, reader.offset())).is_err() {
        return;
    }
    let _ = out.send(Chunk::End(end));
}

/// Parses note verifier keys, one per line; ignores blank lines and lines
/// that are not valid keys (a bundle's key list is untrusted anyway).
pub fn parse_keys(text: &str) -> Vec<NoteVerifierKey> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|l| NoteVerifierKey::parse(l).ok())
        .collect()
}

/// Parses a trusted key file: note verifier key lines (`name+id+base64`).
pub fn parse_trusted_keys(text: &str) -> Result<Vec<NoteVerifierKey>, VerifyError> {
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        keys.push(
            NoteVerifierKey::parse(line)
                .map_err(|e| VerifyError::Trust(format!("bad trusted key {line:?}: {e}")))?,
        );
    }
    if keys.is_empty() {
        return Err(VerifyError::Trust("trusted key file holds no key".into()));
    }
    Ok(keys)
}

/// Parses a checkpoint without checking its signature (to read its size).
pub(crate) fn peek_checkpoint(note: &[u8]) -> Result<Checkpoint, String> {
    checkpoint::parse_unverified(note).map_err(|e| e.to_string())
}

pub(crate) fn hex_root(root: &Hash) -> String {
    hex::encode(root)
}

/// Convenience for tests and tools: verifies a bundle and returns the report
/// of an intact bundle's manifest.
pub fn manifest_of(dir: &Path) -> Result<Manifest, VerifyError> {
    Ok(bundle::read_manifest(dir)?)
}
