//! The per-instance ledger writer: sequences, links, signs and durably
//! appends events with group commit.
//!
//! Pipeline (two threads plus the signing pool):
//! 1. the **sequencer** drains every waiting submission into one batch,
//!    assigns `seq` and time, serialises each envelope once, links the
//!    BLAKE3 chain (cheap, sequential), then signs and leaf-hashes the batch
//!    with the ledger key's [`LedgerSigner`]: a key file signs ordinary
//!    batches right there (cheaper than waking a pool), a backlog or an
//!    HSM-held key in parallel on all cores (rayon; the HSM through its
//!    sessions, as many at a time as it has). A key-file batch without a
//!    rotation can be handed on in signed chunks
//!    ([`WriterConfig::handoff_chunk`]), so the committer can append its
//!    first records while the rest are signed;
//! 2. the **committer** appends every signed batch waiting for it (same
//!    failure epoch, up to [`MAX_BATCH`] records) with one durable write,
//!    answers every caller of those batches, and asks for a checkpoint when
//!    one is due;
//! 3. the **checkpointer** signs and durably saves those checkpoints (and a
//!    final one at shutdown) off the committer's path: saving a note costs
//!    two fsyncs, which would otherwise stall every caller waiting on the
//!    next batch.
//!
//! While the committer waits for `fdatasync`, the sequencer goes on signing
//! (up to `COMMIT_QUEUE` signed batches wait). A caller is answered only
//! after its batch is durable.
//! If an append fails, that batch and every batch sequenced after it fail,
//! and the sequencer restarts from the store's durable head. If a signature
//! cannot be made (an HSM error), the chunk it belongs to and the rest of its
//! batch fail: they were never handed to the committer, and the sequencer
//! continues from the last chunk that was.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use rayon::prelude::*;

use crate::chain::{self, Link};
use crate::checkpoint::Checkpoint;
use crate::event::{Actor, EnvelopeOut, EventDraft, EventError, LedgerKeyRotated};
use crate::histogram::{AtomicHistogram, BATCH_RECORD_BOUNDS, LATENCY_SECONDS_BOUNDS};
use crate::merkle::{self, Hash};
use crate::record::MAX_EVENT_BYTES;
use crate::signer::{LedgerSigner, SignError};
use crate::store::{ChainHead, InstanceLog, Linked, LogNodes, SealedRecord, StoreError};

/// Largest number of events in one batch (one fsync).
pub const MAX_BATCH: usize = 1024;

/// Signed batches that may wait for the committer; it appends every one
/// waiting (up to [`MAX_BATCH`] records) with one write and one fsync.
const COMMIT_QUEUE: usize = 8;

/// What a caller gets back once its event is durable: a receipt it can later
/// prove is in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    /// Chain link of the record.
    pub link: Link,
    /// RFC 9162 leaf hash of the record.
    pub leaf: Hash,
    /// The record's time (RFC 3339, microseconds, UTC).
    pub time: String,
    /// The stored event bytes (so callers can apply them to projections
    /// exactly as a rebuild from the log would).
    pub event: Vec<u8>,
}

/// Why an append failed. In every case nothing of the event was stored.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WriteError {
    #[error("event refused: {0}")]
    Invalid(#[from] EventError),
    #[error("the ledger could not be written: {0}")]
    Storage(String),
    #[error("the ledger key could not sign: {0}")]
    Signing(String),
    #[error("the ledger writer has shut down")]
    Closed,
}

/// The source of event times (injectable for tests and vectors).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Tuning for a writer.
#[derive(Clone)]
pub struct WriterConfig {
    /// Issue a signed checkpoint when this much time has passed since the last
    /// one and the log grew. `Duration::ZERO` = after every batch.
    pub checkpoint_interval: Duration,
    /// Where event times come from; times are made non-decreasing.
    pub clock: Clock,
    /// Hand a key-file batch without a key rotation to the committer in
    /// signed chunks of this many records, so that its first records are
    /// appended while the rest are still being signed. `None`: whole
    /// batches. Chunks pay off when the writer shares the cores with request
    /// handlers (the key service: +4-6% REST wraps/s, docs/BENCHMARKS.md);
    /// a writer fed by in-process appenders is bound by `fdatasync` and
    /// does better with whole batches (13% fewer appends/s with chunks).
    pub handoff_chunk: Option<usize>,
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("handoff_chunk", &self.handoff_chunk)
            .finish_non_exhaustive()
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            checkpoint_interval: Duration::from_secs(1),
            clock: Arc::new(Utc::now),
            handoff_chunk: None,
        }
    }
}

/// Where the committer sends an append's outcome: a one-shot channel that a
/// thread can block on and an async task can await, without spinning.
type Reply = oneshot::Sender<Result<Receipt, WriteError>>;

/// An event handed to the writer whose outcome has not been collected yet.
/// [`PendingReceipt::wait`] blocks the calling thread until the event is
/// durable (or its append failed); [`PendingReceipt::received`] awaits the
/// same outcome from an async task, holding no thread while it waits.
#[must_use = "an append's outcome must be collected before answering anyone"]
pub struct PendingReceipt(Result<oneshot::Receiver<Result<Receipt, WriteError>>, WriteError>);

impl PendingReceipt {
    /// Blocks until the event is durable; its receipt, or why it is not stored.
    pub fn wait(self) -> Result<Receipt, WriteError> {
        match self.0 {
            Ok(answer) => answer.recv().unwrap_or(Err(WriteError::Closed)),
            Err(e) => Err(e),
        }
    }

    /// Awaits the outcome [`Self::wait`] blocks for.
    pub async fn received(self) -> Result<Receipt, WriteError> {
        match self.0 {
            Ok(answer) => answer.await.unwrap_or(Err(WriteError::Closed)),
            Err(e) => Err(e),
        }
    }
}

enum Submission {
    Event {
        draft: EventDraft,
        reply: Reply,
    },
    RotateKey {
        new_key: Arc<dyn LedgerSigner>,
        actor: Actor,
        correlation_id: String,
        reply: Reply,
    },
}

struct Batch {
    records: Vec<SealedRecord>,
    replies: Vec<(Reply, Receipt)>,
    /// The key that must sign checkpoints once this batch is durable.
    key: Arc<dyn LedgerSigner>,
    /// Failure epoch the batch was sequenced in; stale batches are refused.
    epoch: u64,
}

/// The durable head of the log and the ledger key in force at it.
#[derive(Clone)]
struct Durable {
    head: ChainHead,
    key: Arc<dyn LedgerSigner>,
}

/// Counters the writer keeps (for metrics and benchmarks).
#[derive(Debug)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub checkpoints: AtomicU64,
    /// Records per durable batch (one write and one fsync each).
    pub batch_records: AtomicHistogram,
    /// Seconds each batch's durable append took (write + fsync).
    pub append_seconds: AtomicHistogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            batches: AtomicU64::new(0),
            records: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            batch_records: AtomicHistogram::new(BATCH_RECORD_BOUNDS),
            append_seconds: AtomicHistogram::new(LATENCY_SECONDS_BOUNDS),
        }
    }
}

/// Handle to a running writer; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct LedgerWriter {
    submit: Sender<Submission>,
    shared: Arc<Shared>,
}

struct Shared {
    instance: String,
    log: Arc<dyn InstanceLog>,
    stats: WriterStats,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The durable head and the ledger key in force there, updated together
    /// after every append, so a checkpoint never pairs a head with a key
    /// that does not sign it.
    durable: Mutex<Durable>,
    /// Serialises checkpoint issuing so a newer note is never replaced by an older one.
    checkpoint_lock: Mutex<u64>,
}

impl LedgerWriter {
    /// Starts the writer for `log`, signing with `key` (the key in force at
    /// the log's head): a [`crate::ledger_key::LedgerKey`], a
    /// [`crate::signer::HsmSigner`] or any `Arc<dyn LedgerSigner>`.
    pub fn start(
        log: Arc<dyn InstanceLog>,
        key: impl Into<Arc<dyn LedgerSigner>>,
        config: WriterConfig,
    ) -> Self {
        let (submit, submissions) = unbounded::<Submission>();
        // The sequencer keeps signing while an append is in flight.
        let (to_commit, batches) = bounded::<Batch>(COMMIT_QUEUE);
        let key: Arc<dyn LedgerSigner> = key.into();
        let shared = Arc::new(Shared {
            instance: log.instance().to_string(),
            log: log.clone(),
            stats: WriterStats::default(),
            threads: Mutex::new(Vec::new()),
            durable: Mutex::new(Durable {
                head: log.head(),
                key: key.clone(),
            }),
            checkpoint_lock: Mutex::new(0),
        });
        let epoch = Arc::new(AtomicU64::new(0));
        // What the log held when this writer started (checkpointed by the
        // writer before it), read before any thread can append: the
        // checkpointer covers everything after it however late it starts.
        let opened_size = shared.log.head().size;
        let sequencer = {
            let shared = shared.clone();
            let epoch = epoch.clone();
            std::thread::Builder::new()
                .name(format!("ledger-seq-{}", shared.instance))
                .spawn({
                    let (clock, chunk) = (config.clock.clone(), config.handoff_chunk);
                    move || {
                        run_sequencer(
                            &shared,
                            key,
                            &clock,
                            chunk,
                            &submissions,
                            &to_commit,
                            &epoch,
                        )
                    }
                })
        };
        // At most one checkpoint request waits; a due one while the
        // checkpointer is busy is asked for again after the next batch.
        let (request_checkpoint, checkpoint_requests) = bounded::<()>(1);
        let committer = {
            let shared = shared.clone();
            let interval = config.checkpoint_interval;
            std::thread::Builder::new()
                .name(format!("ledger-commit-{}", shared.instance))
                .spawn(move || {
                    run_committer(&shared, &batches, &epoch, interval, &request_checkpoint)
                })
        };
        let checkpointer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("ledger-ckpt-{}", shared.instance))
                .spawn(move || run_checkpointer(&shared, &checkpoint_requests, opened_size))
        };
        let mut threads = shared
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Joined in this order at shutdown: the committer ends once the
        // sequencer has handed it everything, the checkpointer once the
        // committer is gone (after a final checkpoint).
        threads.extend(sequencer.ok());
        threads.extend(committer.ok());
        threads.extend(checkpointer.ok());
        drop(threads);
        LedgerWriter { submit, shared }
    }

    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// The log this writer appends to (for readers).
    pub fn log(&self) -> &Arc<dyn InstanceLog> {
        &self.shared.log
    }

    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// The ledger key in force at the durable head.
    pub fn current_key(&self) -> Arc<dyn LedgerSigner> {
        self.shared.durable().key
    }

    /// Appends one event and waits until it is durable.
    pub fn append(&self, draft: EventDraft) -> Result<Receipt, WriteError> {
        self.submit(draft).wait()
    }

    /// Hands one event to the writer without waiting: the returned pending
    /// receipt yields the outcome once the event's batch is durable.
    pub fn submit(&self, draft: EventDraft) -> PendingReceipt {
        let (reply, answer) = oneshot::channel();
        PendingReceipt(
            self.submit
                .send(Submission::Event { draft, reply })
                .map(|()| answer)
                .map_err(|_| WriteError::Closed),
        )
    }

    /// Rotates the ledger key: appends `ledger_key.rotated` signed by the old
    /// key; every later record and checkpoint is signed by `new_key`. The
    /// caller must have stored `new_key` durably first (a key file, or a key
    /// pair in the HSM and its reference).
    pub fn rotate_key(
        &self,
        new_key: impl Into<Arc<dyn LedgerSigner>>,
        actor: Actor,
        correlation_id: &str,
    ) -> Result<Receipt, WriteError> {
        crate::event::check_token("correlation_id", correlation_id, 128)?;
        let (reply, answer) = oneshot::channel();
        self.submit
            .send(Submission::RotateKey {
                new_key: new_key.into(),
                actor,
                correlation_id: correlation_id.to_string(),
                reply,
            })
            .map_err(|_| WriteError::Closed)?;
        PendingReceipt(Ok(answer)).wait()
    }

    /// Signs and stores a checkpoint of the current durable head now.
    pub fn checkpoint(&self) -> Result<String, WriteError> {
        issue_checkpoint(&self.shared, &self.shared.durable())
    }

    /// Stops accepting events, finishes everything already submitted, writes
    /// a final checkpoint and joins the writer threads. Other clones of this
    /// handle get `Closed` afterwards.
    pub fn shutdown(self) {
        let LedgerWriter { submit, shared } = self;
        drop(submit);
        let threads: Vec<_> = shared
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Origin (and note signer name) of an instance's checkpoints.
pub fn origin_for(instance: &str) -> String {
    format!("keyledger/{instance}")
}

fn run_sequencer(
    shared: &Shared,
    mut key: Arc<dyn LedgerSigner>,
    clock: &Clock,
    handoff_chunk: Option<usize>,
    submissions: &Receiver<Submission>,
    to_commit: &Sender<Batch>,
    failures: &AtomicU64,
) {
    let mut head = shared.log.head();
    let mut epoch = failures.load(Ordering::Acquire);
    let mut last_time: Option<DateTime<Utc>> = None;
    let mut key_id = key.key_id_hex();
    while let Ok(first) = submissions.recv() {
        let mut pending = vec![first];
        while pending.len() < MAX_BATCH {
            match submissions.try_recv() {
                Ok(s) => pending.push(s),
                Err(_) => break,
            }
        }
        let current_epoch = failures.load(Ordering::Acquire);
        if current_epoch != epoch {
            epoch = current_epoch;
            // An append failed: restart from what is durable, including the
            // key in force there (a failed rotation never happened).
            Durable { head, key } = shared.durable();
            key_id = key.key_id_hex();
        }
        // Where to continue from if this batch cannot be signed.
        let (start_head, start_key) = (head, key.clone());
        let now = clock();
        let now = match last_time {
            Some(t) if t > now => t,
            _ => now,
        };
        last_time = Some(now);
        let time = now.to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut unsigned: Vec<Unsigned> = Vec::with_capacity(pending.len());
        let mut replies = Vec::with_capacity(pending.len());
        let mut new_key_after: Option<Arc<dyn LedgerSigner>> = None;
        for submission in pending {
            // Records after a rotation in the same batch are signed by the new key.
            if let Some(next) = new_key_after.take() {
                key = next;
                key_id = key.key_id_hex();
            }
            let (draft, reply, rotation) = match submission {
                Submission::Event { draft, reply } => (draft, reply, None),
                Submission::RotateKey {
                    new_key,
                    actor,
                    correlation_id,
                    reply,
                } => {
                    let payload = LedgerKeyRotated {
                        old_key_id: key_id.clone(),
                        new_key_id: new_key.key_id_hex(),
                        new_public_key: base64_std(new_key.verifying_key().as_bytes()),
                    };
                    match EventDraft::new(actor, correlation_id, &payload) {
                        Ok(d) => (d, reply, Some(new_key)),
                        Err(e) => {
                            let _ = reply.send(Err(e.into()));
                            continue;
                        }
                    }
                }
            };
            let event = match serialise(
                &shared.instance,
                head.size,
                &time,
                &draft,
                &key_id,
                &head.link,
            ) {
                Ok(bytes) => bytes,
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                    continue;
                }
            };
            let linked = Linked::new(head.size, event);
            replies.push(reply);
            head = ChainHead {
                size: head.size + 1,
                link: *linked.link(),
            };
            unsigned.push((linked, key.clone()));
            if let Some(next) = rotation {
                new_key_after = Some(next);
            }
        }
        if let Some(next) = new_key_after.take() {
            key = next;
            key_id = key.key_id_hex();
        }
        if unsigned.is_empty() {
            continue;
        }
        // A key-file batch without a rotation goes to the committer in
        // signed chunks: the committer can append the first records while
        // the sequencer still signs the rest (it merges whatever waits).
        let chunk_len = match handoff_chunk {
            Some(n) if Arc::ptr_eq(&key, &start_key) && key.signs_in_process() => n.max(1),
            _ => usize::MAX,
        };
        let mut unsigned = unsigned.into_iter();
        let mut replies = replies.into_iter();
        // The chain head after the last chunk handed to the committer.
        let mut handed = start_head;
        loop {
            let part: Vec<Unsigned> = unsigned.by_ref().take(chunk_len).collect();
            if part.is_empty() {
                break;
            }
            let part_replies: Vec<_> = replies.by_ref().take(part.len()).collect();
            let records = match sign_batch(part) {
                Ok(records) => records,
                Err(error) => {
                    // Nothing of this chunk or after it reached the
                    // committer: forget it (with a rotation it held) and go
                    // on from what was handed over.
                    for reply in part_replies.into_iter().chain(replies.by_ref()) {
                        let _ = reply.send(Err(WriteError::Signing(error.to_string())));
                    }
                    (head, key) = (handed, start_key.clone());
                    key_id = key.key_id_hex();
                    break;
                }
            };
            if let Some(last) = records.last() {
                handed = head_after(last);
            }
            let replies = part_replies
                .into_iter()
                .zip(&records)
                .map(|(reply, r)| {
                    let receipt = Receipt {
                        seq: r.seq(),
                        link: *r.link(),
                        leaf: *r.leaf(),
                        time: time.clone(),
                        event: r.record().event.clone(),
                    };
                    (reply, receipt)
                })
                .collect();
            let batch = Batch {
                records,
                replies,
                key: key.clone(),
                epoch,
            };
            if to_commit.send(batch).is_err() {
                return;
            }
        }
    }
}

impl Batch {
    /// Appends the next batch (same epoch) to this one.
    fn absorb(&mut self, next: Batch) {
        self.records.extend(next.records);
        self.replies.extend(next.replies);
        self.key = next.key;
    }
}

/// A sequenced event awaiting its signature, and its signer.
type Unsigned = (Linked, Arc<dyn LedgerSigner>);

/// Batches at least this long are signed on all cores even by an
/// in-process key (a backlog); shorter ones on the sequencer thread.
pub const PARALLEL_SIGN_MIN: usize = 64;

/// Signs and leaf-hashes a sequenced batch.
///
/// An in-process key signs in ~20 µs, less than waking the pool's threads
/// and putting them back to sleep costs once it is spread: measured on 2
/// cores (docs/BENCHMARKS.md), 64 appenders reached 46k/s signing ordinary
/// batches (~25 records) here against 39k/s on the pool, and REST wraps
/// were no slower. Signing still overlaps the committer's `fdatasync` of the
/// previous batch. Device-held keys and backlogs use the pool.
fn sign_batch(unsigned: Vec<Unsigned>) -> Result<Vec<SealedRecord>, SignError> {
    let seal = |(linked, signer): Unsigned| linked.sign(|link| signer.record_signature(link));
    let in_process = unsigned.iter().all(|(_, signer)| signer.signs_in_process());
    if in_process && unsigned.len() < PARALLEL_SIGN_MIN {
        unsigned.into_iter().map(seal).collect()
    } else {
        unsigned.into_par_iter().map(seal).collect()
    }
}

/// Starting capacity of an event's bytes: envelope and payload of the
/// common key events fit (a `key.wrapped` is ~600 bytes).
const EVENT_CAPACITY_HINT: usize = 1024;

fn serialise(
    instance: &str,
    seq: u64,
    time: &str,
    draft: &EventDraft,
    key_id: &str,
    prev: &Link,
) -> Result<Vec<u8>, EventError> {
    let prev = chain::to_hex(prev);
    let envelope = EnvelopeOut {
        instance,
        seq,
        time,
        event_type: draft.event_type,
        type_version: draft.type_version,
        actor: &draft.actor,
        correlation_id: &draft.correlation_id,
        payload: &draft.payload,
        ledger_key: key_id,
        prev: &prev,
    };
    // Sized for a typical event, so serialising rarely reallocates.
    let mut bytes = Vec::with_capacity(EVENT_CAPACITY_HINT);
    serde_json::to_writer(&mut bytes, &envelope)
        .map_err(|e| EventError::Serialise(e.to_string()))?;
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size: bytes.len(),
            max: MAX_EVENT_BYTES,
        });
    }
    Ok(bytes)
}

fn run_committer(
    shared: &Shared,
    batches: &Receiver<Batch>,
    failures: &AtomicU64,
    checkpoint_interval: Duration,
    request_checkpoint: &Sender<()>,
) {
    let mut last_request = Instant::now();
    let mut requested_size = shared.log.head().size;
    let mut carried: Option<Batch> = None;
    loop {
        let Some(mut batch) = carried.take().or_else(|| batches.recv().ok()) else {
            break;
        };
        // Batches signed while the previous append was in flight go to
        // disk together: one write and one fsync for all of them.
        while batch.records.len() < MAX_BATCH {
            match batches.try_recv() {
                Ok(next)
                    if next.epoch == batch.epoch
                        && batch.records.len() + next.records.len() <= MAX_BATCH =>
                {
                    batch.absorb(next)
                }
                Ok(next) => {
                    carried = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        let count = batch.records.len() as u64;
        if batch.epoch != failures.load(Ordering::Acquire) {
            // Sequenced on top of a batch that failed: its links are wrong.
            for (reply, _) in batch.replies {
                let _ = reply.send(Err(WriteError::Storage(
                    "an earlier batch failed; retry".into(),
                )));
            }
            continue;
        }
        let started = Instant::now();
        match shared.log.append(&batch.records) {
            Ok(()) => {
                shared
                    .stats
                    .append_seconds
                    .observe(started.elapsed().as_secs_f64());
                shared.stats.batch_records.observe(count as f64);
                shared.stats.batches.fetch_add(1, Ordering::Relaxed);
                shared.stats.records.fetch_add(count, Ordering::Relaxed);
                // The key in force changes before anyone hears of the rotation.
                let Some(head) = batch.records.last().map(head_after) else {
                    continue;
                };
                *shared
                    .durable
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Durable {
                    head,
                    key: batch.key,
                };
                for (reply, receipt) in batch.replies {
                    let _ = reply.send(Ok(receipt));
                }
                if head.size > requested_size
                    && last_request.elapsed() >= checkpoint_interval
                    && request_checkpoint.try_send(()).is_ok()
                {
                    requested_size = head.size;
                    last_request = Instant::now();
                }
            }
            Err(e) => {
                failures.fetch_add(1, Ordering::AcqRel);
                let message = e.to_string();
                for (reply, _) in batch.replies {
                    let _ = reply.send(Err(WriteError::Storage(message.clone())));
                }
            }
        }
    }
}

/// Issues the checkpoints the committer asks for, then, once the committer
/// is gone, a final one of whatever is durable and not yet checkpointed.
/// `opened_size` is the log's size when the writer started: reading it here
/// instead would skip whatever the committer wrote before this thread ran
/// (its checkpoint request then found nothing new, and so did shutdown).
fn run_checkpointer(shared: &Shared, requests: &Receiver<()>, opened_size: u64) {
    let mut checkpointed_size = opened_size;
    let mut issue = || {
        let durable = shared.durable();
        if durable.head.size > checkpointed_size && issue_checkpoint(shared, &durable).is_ok() {
            checkpointed_size = durable.head.size;
        }
    };
    while requests.recv().is_ok() {
        issue();
    }
    issue();
}

/// The chain head once `last` is in the log.
fn head_after(last: &SealedRecord) -> ChainHead {
    ChainHead {
        size: last.seq() + 1,
        link: *last.link(),
    }
}

impl Shared {
    /// A consistent snapshot of the durable head and its key.
    fn durable(&self) -> Durable {
        self.durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Signs a checkpoint of `durable.head` with the key in force there and
/// saves it, unless a checkpoint of a larger log is already saved.
fn issue_checkpoint(shared: &Shared, durable: &Durable) -> Result<String, WriteError> {
    let storage = |e: StoreError| WriteError::Storage(e.to_string());
    let mut saved_size = shared
        .checkpoint_lock
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let Durable { head, key } = durable;
    let root = merkle::root_at(&LogNodes(shared.log.as_ref()), head.size)
        .map_err(|e| WriteError::Storage(format!("computing root: {e}")))?;
    let checkpoint = Checkpoint {
        origin: origin_for(&shared.instance),
        size: head.size,
        root,
        extensions: vec![format!("keyledger-chain {}", chain::to_hex(&head.link))],
    };
    let note = key
        .checkpoint_note(&checkpoint)
        .map_err(|e| WriteError::Signing(e.to_string()))?;
    if head.size >= *saved_size {
        shared.log.save_checkpoint(&note).map_err(storage)?;
        *saved_size = head.size;
    }
    shared.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    Ok(note)
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
