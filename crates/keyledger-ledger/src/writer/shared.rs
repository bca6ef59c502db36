//! The shared writer: the one stage a writer runs on a log that other
//! processes append to as well (several servers on one database). Each
//! batch is sequenced, signed and appended under the store's append lock
//! ([`crate::store::InstanceLog::append_sequenced`]): the store hands over the durable head
//! and the records others appended since this writer last looked; the
//! [`Follower`] applies those first, events decided on a view they moved
//! are refused ([`WriteError::Stale`]), the rest are sequenced after that
//! head, signed, appended and committed; the follower then applies them and
//! their callers are answered. No pipelining: the head is only known under
//! the lock.
//!
//! If the append fails, its callers get the error and nothing of their
//! events was stored (or, if the commit's answer was lost, the records are
//! in the log and come back to the follower as records it had not seen:
//! either way the follower's state is the log's). A record others appended
//! that rotates the ledger key stops this writer: it cannot sign with a key
//! it does not hold, so every later event fails until the server restarts.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::{Receiver, Sender};

use super::sequencer::{last_stamped, receipts, sequence, sign_batch};
use super::{
    Clock, Control, Durable, Follower, MAX_BATCH, Receipt, Shared, Submission, WriteError,
};
use crate::signer::LedgerSigner;
use crate::store::{ChainHead, SealedRecord};
use keyledger_core::event::Envelope;
use keyledger_core::record::Record;

/// A batch handed to the store, and the answers owed once it is durable.
type Appended = (Vec<SealedRecord>, Vec<(super::Reply, Receipt)>);

/// What the shared writer is given besides the log and its submissions.
pub(super) struct SharedStage<'a> {
    pub clock: &'a Clock,
    pub checkpoint_interval: Duration,
    pub request_checkpoint: &'a Sender<()>,
}

/// The shared writer's own state between batches.
struct Follow {
    /// The log size this writer has seen (its follower has applied).
    known: u64,
    /// Records below this were applied before the follower was set.
    follow_from: u64,
    follower: Option<Arc<dyn Follower>>,
    last_time: Option<DateTime<Utc>>,
    /// Why this writer can append no more (another writer rotated the
    /// ledger key).
    stopped: Option<String>,
}

impl Follow {
    /// Takes in `records` stored at `first..` that this writer did not
    /// append (or whose append it could not confirm).
    fn absorb(&mut self, first: u64, records: &[Record], own_key_id: &str) {
        for (seq, record) in (first..).zip(records) {
            if let Ok(envelope) = Envelope::parse(&record.event) {
                if let Ok(t) = DateTime::parse_from_rfc3339(&envelope.time) {
                    let t = t.with_timezone(&Utc);
                    if self.last_time.is_none_or(|last| t > last) {
                        self.last_time = Some(t);
                    }
                }
                if envelope.event_type == "ledger_key.rotated" && envelope.ledger_key == own_key_id
                {
                    self.stopped = Some(format!(
                        "another server rotated the ledger key at seq {seq}; restart this server to load the new key"
                    ));
                }
            }
        }
        self.apply(first, records, true);
    }

    /// Hands `records` at `first..` to the follower (those it has not had).
    fn apply(&mut self, first: u64, records: &[Record], others: bool) {
        let end = first + records.len() as u64;
        if let Some(follower) = &self.follower {
            let skip = self
                .follow_from
                .saturating_sub(first)
                .min(records.len() as u64);
            if (skip as usize) < records.len() {
                follower.follow(first + skip, &records[skip as usize..], others);
            }
        }
        self.known = self.known.max(end);
    }

    fn view(&self) -> Option<u64> {
        self.follower.as_ref().map(|f| f.view())
    }
}

pub(super) fn run_shared(
    shared: &Shared,
    mut key: Arc<dyn LedgerSigner>,
    stage: &SharedStage<'_>,
    submissions: &Receiver<Submission>,
) {
    let start = shared.log.head();
    let mut state = Follow {
        known: start.size,
        follow_from: start.size,
        follower: None,
        last_time: last_stamped(shared.log.as_ref(), start.size),
        stopped: None,
    };
    let mut last_request = Instant::now();
    let mut requested_size = start.size;
    while let Ok(first) = submissions.recv() {
        let mut pending = vec![first];
        while pending.len() < MAX_BATCH {
            match submissions.try_recv() {
                Ok(s) => pending.push(s),
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(pending.len());
        for submission in pending {
            match submission {
                Submission::Control(control) => {
                    control_request(shared, &mut state, &key, control);
                }
                other => events.push(other),
            }
        }
        if events.is_empty() {
            continue;
        }
        if let Some(why) = &state.stopped {
            fail_all(events, &WriteError::Storage(why.clone()));
            continue;
        }
        let key_before = key.clone();
        let mut outcome: Option<Appended> = None;
        let mut events = Some(events);
        let started = Instant::now();
        let result = shared
            .log
            .append_sequenced(state.known, &mut |head, others| {
                let first = state.known.min(head.size);
                state.absorb(first, &others, &key.key_id_hex());
                state.known = head.size;
                let events = events.take().unwrap_or_default();
                if let Some(why) = &state.stopped {
                    fail_all(events, &WriteError::Storage(why.clone()));
                    return Ok(Vec::new());
                }
                // Decisions made on a view these records moved are refused.
                let view = state.view();
                let events: Vec<Submission> = events
                    .into_iter()
                    .filter_map(|s| match s {
                        Submission::Event {
                            basis: Some(b),
                            reply,
                            ..
                        } if Some(b) != view => {
                            let _ = reply.send(Err(WriteError::Stale));
                            None
                        }
                        other => Some(other),
                    })
                    .collect();
                let now = (stage.clock)();
                let now = match state.last_time {
                    Some(t) if t > now => t,
                    _ => now,
                };
                let time = now.to_rfc3339_opts(SecondsFormat::Micros, true);
                let mut next = head;
                let mut key_id = key.key_id_hex();
                let (unsigned, replies) = sequence(
                    &shared.instance,
                    events,
                    &time,
                    &mut next,
                    &mut key,
                    &mut key_id,
                );
                let records = match sign_batch(unsigned) {
                    Ok(records) => records,
                    Err(e) => {
                        let message = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(WriteError::Signing(message.clone())));
                        }
                        return Err(format!("the ledger key could not sign: {message}"));
                    }
                };
                if !records.is_empty() {
                    state.last_time = Some(now);
                }
                let answers = receipts(replies, &records, &time);
                outcome = Some((records.clone(), answers));
                Ok(records)
            });
        match (result, outcome.take()) {
            (Ok(head), Some((records, answers))) if !records.is_empty() => {
                let count = records.len() as u64;
                let first = records[0].seq();
                let stored: Vec<Record> = records.into_iter().map(|r| r.record().clone()).collect();
                state.apply(first, &stored, false);
                *shared
                    .durable
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Durable {
                    head,
                    key: key.clone(),
                };
                // The whole transaction: lock, others' records, signing,
                // inserts and commit.
                shared
                    .stats
                    .append_seconds
                    .observe(started.elapsed().as_secs_f64());
                shared.stats.batch_records.observe(count as f64);
                shared.stats.batches.fetch_add(1, Ordering::Relaxed);
                shared.stats.records.fetch_add(count, Ordering::Relaxed);
                for (reply, receipt) in answers {
                    let _ = reply.send(Ok(receipt));
                }
                if head.size > requested_size
                    && last_request.elapsed() >= stage.checkpoint_interval
                    && stage.request_checkpoint.try_send(()).is_ok()
                {
                    requested_size = head.size;
                    last_request = Instant::now();
                }
            }
            (Ok(head), _) => {
                // Nothing of ours was appended (all stale or refused).
                set_durable(shared, head, &key);
            }
            (Err(e), outcome) => {
                // Nothing of this batch is stored: the key in force is the
                // one before it (a failed rotation never happened).
                key = key_before;
                let error = WriteError::Storage(e.to_string());
                if let Some((_, answers)) = outcome {
                    for (reply, _) in answers {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
                if let Some(events) = events.take() {
                    fail_all(events, &error);
                }
            }
        }
    }
}

/// Records `head` (with the key in force) as durable, if it is newer.
fn set_durable(shared: &Shared, head: ChainHead, key: &Arc<dyn LedgerSigner>) {
    let mut durable = shared
        .durable
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if head.size > durable.head.size {
        *durable = Durable {
            head,
            key: key.clone(),
        };
    }
}

/// Answers every event of `events` with `error`.
fn fail_all(events: Vec<Submission>, error: &WriteError) {
    for submission in events {
        match submission {
            Submission::Event { reply, .. } | Submission::RotateKey { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Submission::Control(control) => control.answer_alone(0),
        }
    }
}

/// Sets the follower or catches it up: reads what others appended after
/// what this writer has seen (no lock needed: nothing is appended here).
fn control_request(
    shared: &Shared,
    state: &mut Follow,
    key: &Arc<dyn LedgerSigner>,
    control: Control,
) {
    let reply = match control {
        Control::Follow {
            follower,
            from,
            reply,
        } => {
            state.follower = Some(follower);
            state.follow_from = from;
            reply
        }
        Control::CatchUp { reply } => reply,
    };
    let result = catch_up(shared, state, key);
    let _ = reply.send(result);
}

fn catch_up(
    shared: &Shared,
    state: &mut Follow,
    key: &Arc<dyn LedgerSigner>,
) -> Result<u64, WriteError> {
    let storage = |e: crate::store::StoreError| WriteError::Storage(e.to_string());
    let head = shared.log.durable_head().map_err(storage)?;
    let mut at = state.known;
    while at < head.size {
        let end = head.size.min(at + 4096);
        let records = shared.log.read(at, end).map_err(storage)?;
        state.absorb(at, &records, &key.key_id_hex());
        at = end;
    }
    if head.size >= state.known {
        set_durable(shared, head, key);
    }
    Ok(state.known)
}
