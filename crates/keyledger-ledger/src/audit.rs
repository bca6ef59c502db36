//! The read-only audit view of one instance's log: what auditors may read
//! (records, Merkle nodes for proofs, a signed checkpoint of the durable
//! log, the ledger key that signs it) and nothing they could change. The
//! REST auditor endpoints and the command line's `ledger export` both read
//! through [`AuditLog`], and both write a bundle's records with
//! [`write_frames`], so the stream and the directory hold the same bytes.

use keyledger_core::bundle::{BUNDLE_FORMAT, Manifest};
use keyledger_core::merkle::{self, Hash};
use keyledger_core::record::Record;

use crate::store::{InstanceLog, StoreError};
use crate::writer::{LedgerWriter, WriteError, origin_for};

/// Records read from the store per step while writing a bundle's records.
pub const FRAME_CHUNK: u64 = 4096;

/// A signed checkpoint note and the log size it commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The C2SP signed note.
    pub note: String,
    /// The number of records it covers.
    pub size: u64,
}

/// Why the audit view could not answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading the log failed (or a position beyond it was asked for).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No checkpoint could be signed (the ledger key or the store failed).
    #[error("no checkpoint could be signed: {0}")]
    Checkpoint(#[from] WriteError),
    /// A stored or signed checkpoint does not parse.
    #[error("the checkpoint does not parse: {0}")]
    Malformed(String),
}

/// Read-only access to one instance's log for auditors.
pub trait AuditLog: Send + Sync {
    /// The instance the log belongs to.
    fn instance(&self) -> &str;

    /// The number of durable records.
    fn size(&self) -> u64;

    /// Records `start..end`, in order.
    fn records(&self, start: u64, end: u64) -> Result<Vec<Record>, StoreError>;

    /// The hash of the perfect subtree at (`level`, `index`), for proofs.
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError>;

    /// A checkpoint covering the whole durable log: the latest stored one
    /// when it does, otherwise one signed (and stored) now.
    fn checkpoint(&self) -> Result<SignedCheckpoint, AuditError>;

    /// The note verifier key of the ledger key in force (the key that
    /// signs new checkpoints).
    fn verifier_key(&self) -> String;
}

/// The Merkle nodes of an audit view, for `merkle`'s proof functions.
pub struct AuditNodes<'a>(pub &'a dyn AuditLog);

impl merkle::NodeSource for AuditNodes<'_> {
    type Error = StoreError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        self.0.node(level, index)
    }
}

fn parse(note: String) -> Result<SignedCheckpoint, AuditError> {
    let size = keyledger_core::checkpoint::parse_unverified(note.as_bytes())
        .map_err(|e| AuditError::Malformed(e.to_string()))?
        .size;
    Ok(SignedCheckpoint { note, size })
}

impl AuditLog for LedgerWriter {
    fn instance(&self) -> &str {
        LedgerWriter::instance(self)
    }

    fn size(&self) -> u64 {
        self.log().head().size
    }

    fn records(&self, start: u64, end: u64) -> Result<Vec<Record>, StoreError> {
        self.log().read(start, end)
    }

    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        self.log().node(level, index)
    }

    fn checkpoint(&self) -> Result<SignedCheckpoint, AuditError> {
        let log: &dyn InstanceLog = self.log().as_ref();
        let head = log.head().size;
        if let Some(note) = log.latest_checkpoint()?
            && let Ok(stored) = parse(note)
            && stored.size >= head
        {
            return Ok(stored);
        }
        parse(LedgerWriter::checkpoint(self)?)
    }

    fn verifier_key(&self) -> String {
        self.current_key().note_verifier().to_string()
    }
}

/// The manifest of a bundle of the first `size` records of `log`.
pub fn manifest(log: &dyn AuditLog, size: u64) -> Manifest {
    Manifest {
        format: BUNDLE_FORMAT.into(),
        instance: log.instance().into(),
        origin: origin_for(log.instance()),
        size,
    }
}

/// Appends the frames of records `start..end` to `out` (the bytes of
/// `records.bin` for that range).
pub fn write_frames(
    log: &dyn AuditLog,
    start: u64,
    end: u64,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    for record in log.records(start, end)? {
        record.encode_frame(out);
    }
    Ok(())
}
