//! The committer: the writer's second stage. It appends every signed batch
//! waiting for it (same failure epoch, up to [`MAX_BATCH`] records) with one
//! durable write, moves the durable head (and the key in force there),
//! answers every caller of those batches, and asks the
//! [checkpointer](super::checkpointer) for a checkpoint when one is due. A
//! failed append fails its batch and every batch sequenced on top of it.

use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{Batch, Durable, MAX_BATCH, Shared, WriteError, head_after};

pub(super) fn run_committer(
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

impl Batch {
    /// Appends the next batch (same epoch) to this one.
    fn absorb(&mut self, next: Batch) {
        self.records.extend(next.records);
        self.replies.extend(next.replies);
        self.key = next.key;
    }
}
