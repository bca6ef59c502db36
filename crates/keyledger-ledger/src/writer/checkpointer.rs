//! The checkpointer: the writer's third stage. It signs and durably saves
//! the checkpoints the committer asks for (and a final one at shutdown)
//! off the committer's path, since saving a note costs two fsyncs that
//! would otherwise stall every caller waiting on the next batch.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use crossbeam_channel::Receiver;

use super::{Durable, Shared, WriteError, origin_for};
use crate::store::{LogNodes, StoreError};
use keyledger_core::chain;
use keyledger_core::checkpoint::Checkpoint;
use keyledger_core::merkle;

/// Issues the checkpoints the committer asks for, then, once the committer
/// is gone, a final one of whatever is durable and not yet checkpointed.
/// `opened_size` is the log's size when the writer started: reading it here
/// instead would skip whatever the committer wrote before this thread ran
/// (its checkpoint request then found nothing new, and so did shutdown).
pub(super) fn run_checkpointer(shared: &Shared, requests: &Receiver<()>, opened_size: u64) {
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

/// Signs a checkpoint of `durable.head` with the key in force there and
/// saves it, unless a checkpoint of a larger log is already saved.
pub(super) fn issue_checkpoint(shared: &Shared, durable: &Durable) -> Result<String, WriteError> {
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
