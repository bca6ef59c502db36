//! The crypto worker: executes a gated operation only once the projection
//! shows its quorum (`Approval::awaiting_execution`: pending, with the
//! approvals it needs), exactly once, and appends an outcome that references
//! the request: `key.destroyed` / `key.purged` with `approval_request_id`,
//! or `operation.failed` when the operation is no longer possible.
//!
//! Kill safety. A request gets one outcome event, and the governance
//! projection closes it on that event, so the worker never runs a request
//! that has an outcome. What a crash can interrupt is the gap between an
//! operation's effect and its outcome event:
//! - delete: the effect *is* the outcome event (`key.destroyed`), nothing
//!   to repeat;
//! - purge: the effect is shredding the key's material. A purge whose
//!   material is already gone does not shred again; it only records the
//!   outcome, with `versions_shredded` = the key's versions (the same value
//!   as in a run without the crash).
//!
//! [`KeyService::open`] runs [`KeyService::run_worker`] after replaying the
//! log, so a request approved before a crash is completed at restart, its
//! outcome attributed to the principal whose approval completed the quorum
//! (as it would have been without the crash).

use super::{KeyError, KeyService, failpoint};
use keyledger_core::decide::key::KeyChange;
use keyledger_core::event::{Actor, Envelope, KeyDestroyed, KeyPurged, OperationFailed};
use keyledger_core::governance::{Approval, ApprovalDenial, OP_KEY_DELETE, OP_KEY_PURGE};
use keyledger_core::keys::state::{self, KeyAction};
use keyledger_ledger::writer::{Receipt, WriteError};

impl KeyService {
    /// One pass of the worker: executes every request that awaits execution
    /// (quorum reached, no outcome yet), in the order the quorums were
    /// reached; returns how many got an outcome. Idempotent: a second pass
    /// finds nothing to do. An error that leaves a request without outcome
    /// (storage, sealed) stops the pass; the next pass retries it.
    pub fn run_worker(&self) -> Result<usize, KeyError> {
        let _guard = self.lock_commands();
        let ready = self.read().governance.awaiting_execution();
        let mut done = 0;
        for request_id in &ready {
            if let Err(e) = self.execute_approved(request_id, false) {
                let still_owed = self
                    .read()
                    .governance
                    .approvals
                    .get(request_id)
                    .is_some_and(Approval::awaiting_execution);
                if still_owed {
                    return Err(e);
                }
            }
            done += 1;
        }
        Ok(done)
    }

    /// Executes one request awaiting execution (the caller holds the
    /// commands lock). A refusal by the operation's own checks is recorded
    /// as `operation.failed` (the request's outcome) and returned.
    pub(super) fn execute_approved(
        &self,
        request_id: &str,
        force: bool,
    ) -> Result<Receipt, KeyError> {
        let approval = self
            .read()
            .governance
            .approvals
            .get(request_id)
            .filter(|a| a.awaiting_execution())
            .cloned()
            .ok_or_else(|| ApprovalDenial::NotFound(request_id.to_string()))?;
        let quorum_seq = approval
            .quorum_seq()
            .ok_or_else(|| ApprovalDenial::NotFound(request_id.to_string()))?;
        let (actor, correlation_id) = self.actor_at(quorum_seq)?;
        let target = approval.target.as_str();
        let result = match approval.operation.as_str() {
            OP_KEY_DELETE => self.destroy(&actor, &correlation_id, target, force, Some(request_id)),
            OP_KEY_PURGE => self.shred(&actor, &correlation_id, target, Some(request_id)),
            other => Err(KeyError::Invalid(format!(
                "{:?} is not an operation of the key service",
                other.chars().take(64).collect::<String>()
            ))),
        };
        match result {
            Err(e @ (KeyError::State(_) | KeyError::NotFound(_) | KeyError::Invalid(_))) => {
                let event = OperationFailed {
                    request_id: request_id.to_string(),
                    operation: approval.operation.clone(),
                    reason: format!("{}: {e}", e.reason().code())
                        .chars()
                        .take(512)
                        .collect(),
                };
                self.record(&Actor::system(), &correlation_id, &event)?;
                Err(e)
            }
            other => other,
        }
    }

    /// The actor and correlation id of the record at `seq` (the approval
    /// that completed a quorum).
    fn actor_at(&self, seq: u64) -> Result<(Actor, String), KeyError> {
        let storage = |e: String| KeyError::Write(WriteError::Storage(e));
        let records = self
            .writer
            .log()
            .read(seq, seq + 1)
            .map_err(|e| storage(e.to_string()))?;
        let record = records
            .first()
            .ok_or_else(|| storage(format!("record {seq} is missing")))?;
        let envelope = Envelope::parse(&record.event).map_err(|e| storage(e.to_string()))?;
        Ok((envelope.actor, envelope.correlation_id))
    }

    /// Deletes (destroys) a key: its outcome event is its only effect.
    pub(super) fn destroy(
        &self,
        actor: &Actor,
        correlation_id: &str,
        key_id: &str,
        force: bool,
        request_id: Option<&str>,
    ) -> Result<Receipt, KeyError> {
        let key = self.key(key_id)?;
        state::check(key.state, KeyAction::Delete)?;
        let event = KeyDestroyed {
            key_id: key.id,
            force,
            approval_request_id: request_id.map(str::to_string),
        };
        self.decide_key(actor, correlation_id, KeyChange::Destroy(event))
    }

    /// Purges a destroyed key: shreds its material, then records
    /// `key.purged`. Material already gone (a purge that crashed before its
    /// event) is not shredded again; only the outcome is recorded.
    pub(super) fn shred(
        &self,
        actor: &Actor,
        correlation_id: &str,
        key_id: &str,
        request_id: Option<&str>,
    ) -> Result<Receipt, KeyError> {
        let key = self
            .read()
            .keys
            .get(key_id)
            .cloned()
            .ok_or_else(|| KeyError::NotFound(key_id.to_string()))?;
        if self.material.versions(&self.instance, &key.id)?.is_empty() {
            state::check(key.state, KeyAction::Purge)?;
        } else {
            state::check_at(key.state, KeyAction::Purge, &key.timeline(), self.now())?;
            self.material.purge(&self.instance, &key.id)?;
            self.forget_material(&key.id);
            failpoint::hit(failpoint::WORKER_AFTER_EFFECT);
        }
        let event = KeyPurged {
            key_id: key.id,
            versions_shredded: u32::try_from(key.versions.len()).unwrap_or(u32::MAX),
            approval_request_id: request_id.map(str::to_string),
        };
        self.decide_key(actor, correlation_id, KeyChange::Purge(event))
    }
}
