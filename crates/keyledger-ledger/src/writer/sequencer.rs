//! The sequencer: the writer's first stage. It drains every waiting
//! submission into one batch, assigns `seq` and time, serialises each
//! envelope once, links the BLAKE3 chain, then signs and leaf-hashes the
//! batch (on its own thread for a key file, on all cores for a backlog or a
//! device-held key) and hands it to the [committer](super::committer),
//! whole or in signed chunks. A batch it cannot sign fails its callers, and
//! it continues from the last chunk it handed on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::{Receiver, Sender};
use rayon::prelude::*;

use super::{
    Batch, Clock, Durable, MAX_BATCH, Receipt, Reply, Shared, Submission, WriteError, head_after,
};
use crate::signer::{LedgerSigner, SignError};
use crate::store::{ChainHead, InstanceLog, Linked, SealedRecord};
use keyledger_core::chain::{self, Link};
use keyledger_core::event::{Envelope, EnvelopeOut, EventDraft, EventError, LedgerKeyRotated};
use keyledger_core::record::MAX_EVENT_BYTES;

pub(super) fn run_sequencer(
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
    // Time never goes backwards along the log (LEDGER-FORMAT §1), across
    // restarts too: start from the last stored event's time.
    let mut last_time: Option<DateTime<Utc>> = last_stamped(shared.log.as_ref(), head.size);
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
        let (unsigned, replies) = sequence(
            &shared.instance,
            pending,
            &time,
            &mut head,
            &mut key,
            &mut key_id,
        );
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
            let replies = receipts(part_replies, &records, &time);
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

/// Sequences `pending` after `head`: serialises each event once at `time`,
/// links it, and moves `head` past it; a key rotation switches `key` (and
/// `key_id`) for the records after it. A submission that cannot be
/// serialised is answered with its error and takes no `seq`. Control
/// submissions must have been taken out before.
pub(super) fn sequence(
    instance: &str,
    pending: Vec<Submission>,
    time: &str,
    head: &mut ChainHead,
    key: &mut Arc<dyn LedgerSigner>,
    key_id: &mut String,
) -> (Vec<Unsigned>, Vec<Reply>) {
    let mut unsigned: Vec<Unsigned> = Vec::with_capacity(pending.len());
    let mut replies = Vec::with_capacity(pending.len());
    let mut new_key_after: Option<Arc<dyn LedgerSigner>> = None;
    for submission in pending {
        // Records after a rotation in the same batch are signed by the new key.
        if let Some(next) = new_key_after.take() {
            *key = next;
            *key_id = key.key_id_hex();
        }
        let (draft, reply, rotation) = match submission {
            Submission::Event { draft, reply, .. } => (draft, reply, None),
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
            Submission::Control(control) => {
                control.answer_alone(head.size);
                continue;
            }
        };
        let event = match serialise(instance, head.size, time, &draft, key_id, &head.link) {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                continue;
            }
        };
        let linked = Linked::new(head.size, event);
        replies.push(reply);
        *head = ChainHead {
            size: head.size + 1,
            link: *linked.link(),
        };
        unsigned.push((linked, key.clone()));
        if let Some(next) = rotation {
            new_key_after = Some(next);
        }
    }
    if let Some(next) = new_key_after.take() {
        *key = next;
        *key_id = key.key_id_hex();
    }
    (unsigned, replies)
}

/// Pairs each caller with the receipt of its record (same order).
pub(super) fn receipts(
    replies: Vec<Reply>,
    records: &[SealedRecord],
    time: &str,
) -> Vec<(Reply, Receipt)> {
    replies
        .into_iter()
        .zip(records)
        .map(|(reply, r)| {
            let receipt = Receipt {
                seq: r.seq(),
                link: *r.link(),
                leaf: *r.leaf(),
                time: time.to_string(),
                event: r.record().event.clone(),
            };
            (reply, receipt)
        })
        .collect()
}

/// The time of the last of the log's first `size` records: a restarted
/// writer stamps nothing earlier, even if the clock went back while it was
/// down. None for an empty log (or a last record that cannot be read or
/// parsed, which the writer cannot append after anyway).
pub(super) fn last_stamped(log: &dyn InstanceLog, size: u64) -> Option<DateTime<Utc>> {
    let last = log.read(size.checked_sub(1)?, size).ok()?.pop()?;
    let envelope = Envelope::parse(&last.event).ok()?;
    DateTime::parse_from_rfc3339(&envelope.time)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A sequenced event awaiting its signature, and its signer.
pub(super) type Unsigned = (Linked, Arc<dyn LedgerSigner>);

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
pub(super) fn sign_batch(unsigned: Vec<Unsigned>) -> Result<Vec<SealedRecord>, SignError> {
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

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
