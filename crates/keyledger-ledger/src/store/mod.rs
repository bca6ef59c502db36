//! The `EventStore` contract: durable, append-only, per-instance logs of
//! records plus the RFC 9162 tree's perfect-subtree hashes and the latest
//! signed checkpoint.
//!
//! Every backend passes the same conformance suite (`crate::conformance`,
//! feature `conformance`). Backends: [`embedded`] (the default, nothing to
//! install).

pub mod embedded;

use keyledger_core::chain::Link;
use keyledger_core::merkle::{self, Hash};
use keyledger_core::record::{Record, SIGNATURE_LEN};

/// An event placed at `seq` with its chain link, awaiting its signature.
///
/// The link can only be the one [`Linked::new`] computed from the event,
/// so everything derived from it downstream is computed once.
#[derive(Debug, Clone)]
pub struct Linked {
    seq: u64,
    event: Vec<u8>,
    link: Link,
}

impl Linked {
    /// Places `event` at `seq` and computes its chain link.
    pub fn new(seq: u64, event: Vec<u8>) -> Self {
        let link = keyledger_core::chain::link(&event);
        Linked { seq, event, link }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// `chain::link` of the event.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Seals the event with `sign`'s signature over its link.
    pub fn sign<E>(
        self,
        sign: impl FnOnce(&Link) -> Result<[u8; SIGNATURE_LEN], E>,
    ) -> Result<SealedRecord, E> {
        let signature = sign(&self.link)?;
        let record = Record {
            event: self.event,
            signature,
        };
        let leaf = record.leaf_hash();
        Ok(SealedRecord {
            seq: self.seq,
            record,
            link: self.link,
            leaf,
        })
    }
}

/// A signed record at its `seq`, with its chain link and Merkle leaf hash.
///
/// Its fields are private and it comes only from [`Linked::sign`] (or
/// [`SealedRecord::new`]), which compute the link and the leaf from the
/// record itself: a store relies on them without hashing the record again.
#[derive(Debug, Clone)]
pub struct SealedRecord {
    seq: u64,
    record: Record,
    link: Link,
    leaf: Hash,
}

impl SealedRecord {
    /// Seals an already signed record at `seq` (computes link and leaf).
    pub fn new(seq: u64, record: Record) -> Self {
        let link = record.link();
        let leaf = record.leaf_hash();
        SealedRecord {
            seq,
            record,
            link,
            leaf,
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// `chain::link(&record.event)`.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// `record.leaf_hash()`.
    pub fn leaf(&self) -> &Hash {
        &self.leaf
    }
}

/// The end of an instance's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Number of records (the next `seq`).
    pub size: u64,
    /// Link of the last record, `GENESIS_PREV` when empty.
    pub link: Link,
}

/// Store errors. Backends map their own failures onto these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("instance {0:?} does not exist")]
    UnknownInstance(String),
    #[error("instance {0:?} already exists")]
    InstanceExists(String),
    #[error(
        "invalid instance name {0:?}: 1-64 characters of a-z, 0-9, '-', '_', starting with a letter or digit"
    )]
    InvalidInstanceName(String),
    #[error("append conflict: batch starts at seq {batch_start} but the log has {size} records")]
    Conflict { batch_start: u64, size: u64 },
    #[error("batch is not contiguous at seq {seq}")]
    NonContiguous { seq: u64 },
    /// A record of a batch is unfit for the log (size, chain fields, or a
    /// `link`/`leaf` that does not match the record); nothing was written.
    #[error("record {seq} refused: {reason}")]
    InvalidRecord { seq: u64, reason: String },
    #[error("range {start}..{end} is outside the log of {size} records")]
    OutOfRange { start: u64, end: u64, size: u64 },
    #[error("log of instance {instance:?} is locked by another process")]
    Locked { instance: String },
    #[error("stored log is corrupt at seq {seq}: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// One instance's log. Implementations are safe to share between the writer
/// and readers: appends are serialised internally, reads see only durable,
/// complete batches.
pub trait InstanceLog: Send + Sync {
    /// The instance this log belongs to.
    fn instance(&self) -> &str;

    /// The current end of the log.
    fn head(&self) -> ChainHead;

    /// Appends a contiguous batch starting at `head().size`, durably: when
    /// this returns `Ok`, every record of the batch survives a crash. On
    /// error nothing of the batch is visible (now or after restart).
    ///
    /// Refused: a batch not starting at the head ([`StoreError::Conflict`],
    /// also when another append won the race), seqs out of order
    /// ([`StoreError::NonContiguous`]), and a record whose event is empty,
    /// longer than `MAX_EVENT_BYTES` or does not continue the chain (its
    /// JSON `seq` and `prev` fields; [`StoreError::InvalidRecord`]).
    fn append(&self, batch: &[SealedRecord]) -> Result<(), StoreError>;

    /// Records `start..end` in order.
    fn read(&self, start: u64, end: u64) -> Result<Vec<Record>, StoreError>;

    /// Hash of the perfect subtree at (`level`, `index`); see [`merkle::NodeSource`].
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError>;

    /// Stores the latest signed checkpoint note (replacing the previous one).
    fn save_checkpoint(&self, note: &str) -> Result<(), StoreError>;

    /// The latest signed checkpoint note, if any.
    fn latest_checkpoint(&self) -> Result<Option<String>, StoreError>;

    /// A torn tail (an unacknowledged, partly written batch) that opening
    /// this log cut off, so the ledger can record it as an event.
    fn torn_tail(&self) -> Option<TornTail> {
        None
    }

    /// True when other processes may append to this log too (several
    /// servers on one database). Their writers sequence every batch under
    /// the store's append lock ([`InstanceLog::append_sequenced`]) and learn
    /// of the records others appended from it; a log only this process
    /// writes (the embedded store holds a lock file) answers false.
    fn shared(&self) -> bool {
        false
    }

    /// The durable head as stored now (a shared log re-reads it; others
    /// answer [`InstanceLog::head`]).
    fn durable_head(&self) -> Result<ChainHead, StoreError> {
        Ok(self.head())
    }

    /// Appends a batch sequenced under the store's append lock: hands
    /// `build` the durable head and the records stored after `known` (those
    /// another writer appended since this one last looked), appends the
    /// records `build` returns (which must start at that head) and commits.
    /// Answers the head after the append. If `build` or the append fails,
    /// nothing of the batch is stored; what `build` was shown is in the log
    /// either way.
    ///
    /// This default serves logs only this process writes: the head cannot
    /// move between `build` and the append.
    fn append_sequenced(
        &self,
        known: u64,
        build: &mut dyn FnMut(ChainHead, Vec<Record>) -> Result<Vec<SealedRecord>, String>,
    ) -> Result<ChainHead, StoreError> {
        let head = self.head();
        let others = self.read(known.min(head.size), head.size)?;
        let batch = build(head, others).map_err(StoreError::Backend)?;
        self.append(&batch)?;
        Ok(batch.last().map_or(head, |last| ChainHead {
            size: last.seq() + 1,
            link: *last.link(),
        }))
    }
}

/// What recovery cut off the end of a log at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    pub discarded_bytes: u64,
    /// The log size after the cut (the seq the next append gets).
    pub size: u64,
}

/// A backend holding many instances' logs.
pub trait EventStore: Send + Sync {
    /// Creates an empty log for a new instance.
    fn create_instance(
        &self,
        instance: &str,
    ) -> Result<std::sync::Arc<dyn InstanceLog>, StoreError>;

    /// Opens an existing instance's log (recovering a torn tail if needed).
    fn open_instance(&self, instance: &str) -> Result<std::sync::Arc<dyn InstanceLog>, StoreError>;

    /// Names of all instances, sorted.
    fn list_instances(&self) -> Result<Vec<String>, StoreError>;
}

/// Adapts an [`InstanceLog`] to the Merkle proof generators.
pub struct LogNodes<'a>(pub &'a dyn InstanceLog);

impl merkle::NodeSource for LogNodes<'_> {
    type Error = StoreError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        self.0.node(level, index)
    }
}

/// Checks one record of a batch before a backend writes it at `seq` after
/// the link `prev`: event size bounds and the event's JSON `seq` and `prev`
/// fields ([`StoreError::InvalidRecord`] otherwise). Every backend applies
/// the same rule as the embedded store, so none accepts what another refuses.
pub fn check_sealed(sealed: &SealedRecord, seq: u64, prev: &Link) -> Result<(), StoreError> {
    embedded::check::sealed(sealed, seq, prev)
}

/// Checks an instance name: 1-64 of `a-z 0-9 - _`, first a letter or digit.
pub fn check_instance_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInstanceName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_carry_their_own_link_and_leaf() {
        let event = br#"{"seq":7,"prev":"00"}"#.to_vec();
        let linked = Linked::new(7, event.clone());
        assert_eq!(linked.seq(), 7);
        assert_eq!(*linked.link(), keyledger_core::chain::link(&event));
        let mut signed_over = None;
        let sealed = linked
            .sign(|link| {
                signed_over = Some(*link);
                Ok::<_, ()>([5u8; SIGNATURE_LEN])
            })
            .expect("sign");
        assert_eq!(signed_over, Some(keyledger_core::chain::link(&event)));
        assert_eq!(sealed.seq(), 7);
        assert_eq!(sealed.record().event, event);
        assert_eq!(*sealed.link(), sealed.record().link());
        assert_eq!(*sealed.leaf(), sealed.record().leaf_hash());
        let again = SealedRecord::new(7, sealed.record().clone());
        assert_eq!((again.link(), again.leaf()), (sealed.link(), sealed.leaf()));
        // A signing failure yields no record.
        assert_eq!(
            Linked::new(8, event).sign(|_| Err("no key")).err(),
            Some("no key")
        );
    }
}
