//! The per-instance ledger writer: sequences, links, signs and durably
//! appends events with group commit.
//!
//! Pipeline (three threads plus the signing pool), one file per stage:
//! 1. the **sequencer** (`sequencer.rs`) drains every waiting submission into one batch,
//!    assigns `seq` and time, serialises each envelope once, links the
//!    BLAKE3 chain (cheap, sequential), then signs and leaf-hashes the batch
//!    with the ledger key's [`LedgerSigner`]: a key file signs ordinary
//!    batches right there (cheaper than waking a pool), a backlog or an
//!    HSM-held key in parallel on all cores (rayon; the HSM through its
//!    sessions, as many at a time as it has). A key-file batch without a
//!    rotation can be handed on in signed chunks
//!    ([`WriterConfig::handoff_chunk`]), so the committer can append its
//!    first records while the rest are signed;
//! 2. the **committer** (`committer.rs`) appends every signed batch waiting for it (same
//!    failure epoch, up to [`MAX_BATCH`] records) with one durable write,
//!    answers every caller of those batches, and asks for a checkpoint when
//!    one is due;
//! 3. the **checkpointer** (`checkpointer.rs`) signs and durably saves those checkpoints (and a
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
//!
//! A log other processes append to as well ([`InstanceLog::shared`]:
//! several servers on one database) gets the **shared writer**
//! (`shared.rs`) instead of the sequencer and committer: it sequences,
//! signs and appends each batch under the store's append lock, after
//! handing the records other writers appended to its [`Follower`], which
//! sees every record of the log exactly once, in order (see `follower.rs`).

mod checkpointer;
mod committer;
mod follower;
mod sequencer;
mod shared;

pub use follower::Follower;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::{Sender, bounded, unbounded};

use crate::histogram::{AtomicHistogram, BATCH_RECORD_BOUNDS, LATENCY_SECONDS_BOUNDS};
use crate::signer::LedgerSigner;
use crate::store::{ChainHead, InstanceLog, SealedRecord};
use checkpointer::{issue_checkpoint, run_checkpointer};
use committer::run_committer;
use keyledger_core::chain::Link;
use keyledger_core::event::{Actor, EventDraft, EventError};
use keyledger_core::merkle::Hash;
use sequencer::run_sequencer;
use shared::{SharedStage, run_shared};

pub use sequencer::PARALLEL_SIGN_MIN;

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
    /// Decided on a view of the log that a record another writer appended
    /// has since changed: nothing was stored; decide again and resubmit.
    #[error("decided on a state another server has since changed; nothing was stored")]
    Stale,
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
pub(super) type Reply = oneshot::Sender<Result<Receipt, WriteError>>;

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
        /// The follower's view the event was decided on; a shared writer
        /// refuses it ([`WriteError::Stale`]) once the view has moved.
        basis: Option<u64>,
        reply: Reply,
    },
    RotateKey {
        new_key: Arc<dyn LedgerSigner>,
        actor: Actor,
        correlation_id: String,
        reply: Reply,
    },
    Control(Control),
}

/// Requests about following the log rather than appending to it.
enum Control {
    /// From now on, hand every record from `from` on to `follower`.
    Follow {
        follower: Arc<dyn Follower>,
        from: u64,
        reply: oneshot::Sender<Result<u64, WriteError>>,
    },
    /// Catch up with what other writers appended; answers the size followed.
    CatchUp {
        reply: oneshot::Sender<Result<u64, WriteError>>,
    },
}

impl Control {
    /// The answer of a writer that is its log's only one: there is nothing
    /// to follow (the service applies its own receipts).
    fn answer_alone(self, size: u64) {
        let (Control::Follow { reply, .. } | Control::CatchUp { reply }) = self;
        let _ = reply.send(Ok(size));
    }
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
    /// the log's head): a [`crate::ledger_key::LedgerKey`], a key held in a
    /// signing device, or any `Arc<dyn LedgerSigner>`.
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
        // At most one checkpoint request waits; a due one while the
        // checkpointer is busy is asked for again after the next batch.
        let (request_checkpoint, checkpoint_requests) = bounded::<()>(1);
        let interval = config.checkpoint_interval;
        let (sequencer, committer) = if log.shared() {
            // One thread sequences, signs and appends under the store's lock.
            let shared = shared.clone();
            let clock = config.clock.clone();
            let writer = std::thread::Builder::new()
                .name(format!("ledger-shared-{}", shared.instance))
                .spawn(move || {
                    let stage = SharedStage {
                        clock: &clock,
                        checkpoint_interval: interval,
                        request_checkpoint: &request_checkpoint,
                    };
                    run_shared(&shared, key, &stage, &submissions)
                });
            (writer, None)
        } else {
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
            let committer = {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("ledger-commit-{}", shared.instance))
                    .spawn(move || {
                        run_committer(&shared, &batches, &epoch, interval, &request_checkpoint)
                    })
            };
            (sequencer, Some(committer))
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
        threads.extend(committer.and_then(Result::ok));
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
        self.submit_on(draft, None)
    }

    /// [`Self::submit`] for an event decided on the follower's view
    /// `basis` ([`Follower::view`]): a shared writer refuses it with
    /// [`WriteError::Stale`] if the view has moved before it is sequenced.
    pub fn submit_on(&self, draft: EventDraft, basis: Option<u64>) -> PendingReceipt {
        let (reply, answer) = oneshot::channel();
        PendingReceipt(
            self.submit
                .send(Submission::Event {
                    draft,
                    basis,
                    reply,
                })
                .map(|()| answer)
                .map_err(|_| WriteError::Closed),
        )
    }

    /// True when other processes append to this log too: the writer then
    /// hands every record, its own included, to the [`Follower`] set with
    /// [`Self::follow`], in log order, before answering for it.
    pub fn shared(&self) -> bool {
        self.shared.log.shared()
    }

    /// Hands every record from `from` on (the size `follower` has already
    /// applied) to `follower`, in log order, exactly once: those others
    /// appended before this writer sequences anything after them, its own
    /// before it answers their callers. Catches up at once; answers the
    /// size followed. For a log only this writer appends to it does nothing
    /// (the service applies its own receipts).
    pub fn follow(&self, follower: Arc<dyn Follower>, from: u64) -> Result<u64, WriteError> {
        self.control(|reply| Control::Follow {
            follower,
            from,
            reply,
        })
    }

    /// Catches the follower up with what other writers appended; answers
    /// the size followed.
    pub fn catch_up(&self) -> Result<u64, WriteError> {
        self.control(|reply| Control::CatchUp { reply })
    }

    fn control(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<u64, WriteError>>) -> Control,
    ) -> Result<u64, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.submit
            .send(Submission::Control(make(reply)))
            .map_err(|_| WriteError::Closed)?;
        answer.recv().unwrap_or(Err(WriteError::Closed))
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
        keyledger_core::event::check_token("correlation_id", correlation_id, 128)?;
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
