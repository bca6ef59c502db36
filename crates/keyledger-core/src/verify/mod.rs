//! Offline verification of a ledger: chain, signatures, key authority,
//! sequence, Merkle root and checkpoints, streaming in flat memory.
//!
//! The verifier trusts nothing but what the caller passes as trusted (a
//! ledger public key and/or an earlier checkpoint). Every failure is located:
//! the report names the first bad position and the kind of failure.
//!
//! It reads nothing by itself: [`verify_records`] and [`replay_policy`]
//! take a bundle's parts as bytes and its records as a [`Read`] (opening a
//! bundle directory is `keyledger-verify`'s job). With the `parallel`
//! feature (default) a reader thread frames records while rayon checks
//! hashes and signatures on every core; without it the same steps run in
//! the caller's thread, in the same order, so the reports are the same.

mod checks;
mod policy;
mod sequence;
mod stream;

use std::io::{BufReader, Read};

use serde::Serialize;

use crate::bundle::{self, Manifest};
use crate::checkpoint::{self, Checkpoint, NoteVerifierKey};
use crate::merkle::Hash;
use crate::record::{FrameReader, ReadError};

pub use policy::{Finding, MAX_FINDINGS, PolicyReplay, PolicyReport, Violation};
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
    /// A record's frame cannot be decoded, or its event is not exactly one
    /// well-formed event of its type (LEDGER-FORMAT §1).
    #[error("record {seq} is malformed: {reason}")]
    Malformed {
        /// Position of the record.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record's event type and version are not in the catalogue
    /// (LEDGER-FORMAT §11): a verifier that does not know an event cannot
    /// vouch for the log.
    #[error("record {seq} is of unknown event type {event_type:?} version {type_version}")]
    UnknownEvent {
        /// Position of the record.
        seq: u64,
        /// The type the record names.
        event_type: String,
        /// The version the record names.
        type_version: u32,
    },
    /// A record names another instance.
    #[error("record {seq} belongs to instance {found:?}, not {expected:?}")]
    WrongInstance {
        /// Position of the record.
        seq: u64,
        /// The bundle's instance.
        expected: String,
        /// The instance the record names.
        found: String,
    },
    /// Records are missing at a position.
    #[error("record {seq} is missing (the next record present is {found})")]
    Removed {
        /// The first missing sequence number.
        seq: u64,
        /// The sequence number found in its place.
        found: u64,
    },
    /// Records are out of order.
    #[error("records are reordered at position {seq} (found seq {found})")]
    Reordered {
        /// The position where the order breaks.
        seq: u64,
        /// The sequence number found there.
        found: u64,
    },
    /// A record appears twice.
    #[error("record {seq} is duplicated at position {position}")]
    Duplicated {
        /// The duplicated record's sequence number.
        seq: u64,
        /// Where the copy is.
        position: u64,
    },
    /// A record's `prev` is not the link of the record before it.
    #[error("chain broken at record {seq}: its prev does not match the previous record")]
    ChainBroken {
        /// Position of the record.
        seq: u64,
    },
    /// A record's signature does not verify under the key in force.
    #[error("bad signature on record {seq}")]
    BadSignature {
        /// Position of the record.
        seq: u64,
    },
    /// A record names a ledger key other than the one in force.
    #[error(
        "record {seq} is signed by key {key_id}, which is not the ledger key in force ({expected})"
    )]
    UnauthorizedKey {
        /// Position of the record.
        seq: u64,
        /// The key id the record names.
        key_id: String,
        /// The key id in force.
        expected: String,
    },
    /// A record's time is earlier than the record before it.
    #[error("record {seq} is stamped {time}, earlier than the record before it ({previous})")]
    TimeBackwards {
        /// Position of the record.
        seq: u64,
        /// Its time.
        time: String,
        /// The previous record's time.
        previous: String,
    },
    /// A `ledger_key.rotated` record does not name the key in force as the
    /// old key, or declares a new key that does not match its id.
    #[error("record {seq} is not a valid ledger key rotation: {reason}")]
    BadRotation {
        /// Position of the record.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Record 0 is not an `instance.created` of this instance's origin
    /// declaring a valid ledger key.
    #[error("record 0 is not a valid genesis record: {reason}")]
    BadGenesis {
        /// What is wrong with it.
        reason: String,
    },
    /// The genesis key is not among the trusted keys.
    #[error("the log's genesis key {key_id} is not a trusted key")]
    UntrustedKey {
        /// The genesis key's id.
        key_id: String,
    },
    /// Fewer records than a checkpoint or the manifest covers.
    #[error("log truncated: expected at least {expected} records, found {found}")]
    Truncated {
        /// Records the checkpoint or manifest covers.
        expected: u64,
        /// Records present.
        found: u64,
    },
    /// A checkpoint does not parse, verify or name this log's origin.
    #[error("checkpoint is invalid: {reason}")]
    BadCheckpoint {
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint's body is not exactly the LEDGER-FORMAT §6 shape
    /// (origin, size, root and one `keyledger-chain` line).
    #[error("checkpoint does not have the format's shape: {reason}")]
    CheckpointShape {
        /// What is wrong with it.
        reason: String,
    },
    /// The bundle's checkpoint covers fewer records than the bundle holds.
    #[error("checkpoint size {checkpoint} does not match the {records} records")]
    CheckpointSizeMismatch {
        /// The checkpoint's size.
        checkpoint: u64,
        /// Records present.
        records: u64,
    },
    /// The records' Merkle root differs from the checkpoint's.
    #[error("Merkle root mismatch at size {size}: the records do not match the checkpoint")]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
    },
    /// The checkpoint's chain-head extension names another link.
    #[error("chain head mismatch at size {size}: the checkpoint names another head")]
    ChainHeadMismatch {
        /// The checkpoint's size.
        size: u64,
    },
    /// The log does not extend the trusted checkpoint.
    #[error("log is inconsistent with the trusted checkpoint of size {size}")]
    InconsistentCheckpoint {
        /// The trusted checkpoint's size.
        size: u64,
    },
    /// The bundle's manifest is not a valid manifest of this format.
    #[error("the bundle manifest is malformed: {reason}")]
    BadManifest {
        /// What is wrong with it.
        reason: String,
    },
    /// The bundle holds more records than its manifest says.
    #[error("the manifest says {manifest} records but the bundle holds {records}")]
    ManifestMismatch {
        /// Records the manifest names.
        manifest: u64,
        /// Records present.
        records: u64,
    },
}

impl Failure {
    /// The first bad position, where the failure has one.
    pub fn position(&self) -> Option<u64> {
        match self {
            Failure::Malformed { seq, .. }
            | Failure::WrongInstance { seq, .. }
            | Failure::Removed { seq, .. }
            | Failure::Reordered { seq, .. }
            | Failure::UnknownEvent { seq, .. }
            | Failure::ChainBroken { seq }
            | Failure::BadSignature { seq }
            | Failure::UnauthorizedKey { seq, .. }
            | Failure::TimeBackwards { seq, .. }
            | Failure::BadRotation { seq, .. } => Some(*seq),
            Failure::Duplicated { position, .. } => Some(*position),
            Failure::BadGenesis { .. } | Failure::UntrustedKey { .. } => Some(0),
            Failure::Truncated { found, .. } => Some(*found),
            Failure::RootMismatch { size }
            | Failure::ChainHeadMismatch { size }
            | Failure::InconsistentCheckpoint { size } => Some(*size),
            Failure::BadCheckpoint { .. }
            | Failure::CheckpointShape { .. }
            | Failure::CheckpointSizeMismatch { .. }
            | Failure::BadManifest { .. }
            | Failure::ManifestMismatch { .. } => None,
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when no failure was found.
    pub ok: bool,
    /// The instance the manifest names.
    pub instance: String,
    /// Records verified before the first failure (all of them when intact).
    pub records: u64,
    /// Hex root of all verified records.
    pub root: String,
    /// Size of the bundle's checkpoint, when it parses.
    pub checkpoint_size: Option<u64>,
    /// Ledger-key rotations seen.
    pub key_rotations: u64,
    /// The first failure found.
    pub failure: Option<Failure>,
}

impl Report {
    /// True when no failure was found.
    pub fn ok(&self) -> bool {
        self.ok && self.failure.is_none()
    }
}

/// Errors that stop verification before any verdict (unreadable input).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The manifest cannot be read (a malformed one is the finding
    /// [`Failure::BadManifest`]).
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    /// A bundle file could not be read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file: its name in the bundle, or its path once a directory
        /// reader has located it.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A trusted key or checkpoint passed by the caller is invalid.
    #[error("trusted input is invalid: {0}")]
    Trust(String),
}

/// Verifies a bundle: its manifest (`manifest`: the bytes of
/// [`bundle::MANIFEST_FILE`]), its checkpoint (`checkpoint_note`: the bytes
/// of [`bundle::CHECKPOINT_FILE`]) and the record frames read from
/// `records`. A bundle's `keys` file, if one is present, is not read: the
/// log itself declares every ledger key (LEDGER-FORMAT §4, §8). `progress`
/// is called with the number of bytes of `records` consumed so far. A
/// malformed manifest is the finding [`Failure::BadManifest`]; a read error
/// of `records` is [`VerifyError::Io`] naming [`bundle::RECORDS_FILE`].
pub fn verify_records<R: Read + Send>(
    manifest: &[u8],
    trust: &Trust,
    checkpoint_note: &[u8],
    records: R,
    progress: &dyn Fn(u64),
) -> Result<Report, VerifyError> {
    let manifest = match check_manifest(manifest) {
        Ok(manifest) => manifest,
        Err(reason) => return Ok(Report::bad_manifest(reason)),
    };
    let mut verifier = SequenceVerifier::new(&manifest, trust, checkpoint_note)?;
    match stream::run(&mut verifier, records, progress) {
        Err(source) => {
            return Err(VerifyError::Io {
                file: bundle::RECORDS_FILE.into(),
                source,
            });
        }
        Ok(Some(frame_error)) => verifier.frame_error(frame_error),
        Ok(None) => {}
    }
    Ok(verifier.finish())
}

/// Parses a manifest and checks that its origin is its instance's,
/// `keyledger/<instance>`.
fn check_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    let manifest = Manifest::parse(bytes).map_err(|e| match e {
        bundle::BundleError::Manifest(reason) => reason,
        other => other.to_string(),
    })?;
    let origin = format!("keyledger/{}", manifest.instance);
    if manifest.origin != origin {
        return Err(format!(
            "origin {:?} is not the instance's {origin:?}",
            manifest.origin
        ));
    }
    Ok(manifest)
}

impl Report {
    fn bad_manifest(reason: String) -> Report {
        Report {
            ok: false,
            instance: String::new(),
            records: 0,
            root: hex_root(&crate::merkle::empty_root()),
            checkpoint_size: None,
            key_rotations: 0,
            failure: Some(Failure::BadManifest { reason }),
        }
    }
}

/// Replays the governance rules over a bundle's records ([`PolicyReplay`]),
/// streaming them from `records` one at a time: only the projections and the
/// findings stay in memory. Run it on records that [`verify_records`] found
/// intact: the replay trusts their order and signatures. `progress` is
/// called with the bytes consumed so far. A read or framing error is
/// [`VerifyError::Io`] naming [`bundle::RECORDS_FILE`].
pub fn replay_policy<R: Read>(
    records: R,
    progress: &dyn Fn(u64),
) -> Result<PolicyReport, VerifyError> {
    let io = |source: std::io::Error| VerifyError::Io {
        file: bundle::RECORDS_FILE.into(),
        source,
    };
    let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, records));
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

/// Parses a trusted key file (LEDGER-FORMAT §9): one or more C2SP note
/// verifier keys (`keyledger/<instance>+<key id hex>+<base64(0x01 ||
/// public key)>`), one per line; blank lines and surrounding whitespace
/// are ignored, any other line is an error.
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
