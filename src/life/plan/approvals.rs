//! Approvals of gated key operations in a generated life: managers ask for
//! a second authorisation (`setKeyForDeletion`, dual-authorisation purge),
//! another manager approves and the crypto worker executes the request at
//! once, a manager withdraws one, the scheduler closes those that lapsed;
//! as `KeyService`'s approvals and worker do, decided by the approval and
//! key aggregates.

use chrono::SecondsFormat;

use super::{Life, LifeError, credential_actor};
use keyledger_core::Projections;
use keyledger_core::decide::approval::{self, ApprovalChange, ApprovalCommand};
use keyledger_core::decide::key::{self, KeyChange, KeyCommand};
use keyledger_core::event::{
    Actor, ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRequested, EventDraft,
    KeyDestroyed, KeyPurged, Role,
};
use keyledger_core::governance::{Approval, OP_KEY_DELETE, OP_KEY_PURGE};
use keyledger_core::keys::state::{self as state, DUAL_AUTH_WINDOW, KeyAction};

impl Life {
    /// `approval.requested` for `operation` on `key_id` by `actor`, one
    /// approval by another principal within seven days, unless one is open.
    pub(super) fn request(
        &mut self,
        actor: Option<Actor>,
        operation: &str,
        key_id: &str,
    ) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let action = if operation == OP_KEY_PURGE {
            KeyAction::Purge
        } else {
            KeyAction::SetKeyForDeletion
        };
        let allowed = self
            .state
            .keys
            .get(key_id)
            .is_some_and(|k| state::check_at(k.state, action, &k.timeline(), self.now).is_ok());
        if !allowed
            || self
                .state
                .governance
                .open_approval(operation, key_id, self.now)
                .is_some()
        {
            return Ok(None);
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let change = ApprovalChange::Request(ApprovalRequested {
            request_id: request_id.clone(),
            operation: operation.to_string(),
            target: key_id.to_string(),
            required_approvals: 1,
            expires_at: (self.now + DUAL_AUTH_WINDOW).to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        let step = self.approval(actor, change)?;
        if step.is_some() {
            self.requests.push(request_id);
            self.refresh_requests();
        }
        Ok(step)
    }

    /// A second manager approves an open request; the approval completes
    /// its quorum, so the crypto worker executes it at once and records the
    /// outcome under the approver (`KeyService::grant`, `execute_approved`).
    pub(super) fn approve(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(request_id) = self.rng.pick(&self.requests).cloned() else {
            return Ok(None);
        };
        let Some(request) = self.state.governance.approvals.get(&request_id).cloned() else {
            return Ok(None);
        };
        if !request.open(self.now) {
            return Ok(None);
        }
        let others: Vec<String> = self
            .managers
            .iter()
            .filter(|m| **m != request.requester)
            .cloned()
            .collect();
        let Some(approver) = self.rng.pick(&others).cloned() else {
            return Ok(None);
        };
        let actor = credential_actor(&approver, Role::Manager);
        let Some(outcome) = outcome(&self.state, &request_id, &request) else {
            return Ok(None);
        };
        // The key service checks the operation against the key before it
        // records the approval; a request it could not execute is left.
        let correlation_id = self.correlation_id();
        let probe = KeyCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.clone(),
            at: self.now,
            change: outcome,
        };
        if key::check(&self.state, &probe).is_err() {
            return Ok(None);
        }
        let grant = ApprovalCommand {
            actor,
            correlation_id,
            at: self.now,
            change: ApprovalChange::Grant(ApprovalGranted {
                request_id: request_id.clone(),
                approver,
            }),
        };
        let Ok(drafts) = approval::decide(&self.state, &grant) else {
            return Ok(None);
        };
        let mut step = self.applied(drafts)?;
        step.extend(self.execute(probe)?);
        Ok(Some(step))
    }

    /// The crypto worker executes a request whose quorum is in the log,
    /// under the principal whose approval completed it
    /// (`KeyService::execute_approved`).
    pub(super) fn execute(&mut self, command: KeyCommand) -> Result<Vec<EventDraft>, LifeError> {
        let key_id = command.change.key_id().to_string();
        let drafts = key::decide(&self.state, &command).map_err(|e| {
            LifeError::Stuck(format!(
                "the worker could not execute an approved request on {key_id}: {e}"
            ))
        })?;
        let step = self.applied(drafts)?;
        self.refresh_key(&key_id);
        self.refresh_requests();
        Ok(step)
    }

    /// A request approved before a run was killed, whose outcome the log
    /// does not hold: the worker executes it first thing, as
    /// `KeyService::open` does (`None` once there is none it can execute).
    pub(super) fn owed_execution(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        while let Some(request_id) = self.owed.pop() {
            let Some(request) = self.state.governance.approvals.get(&request_id).cloned() else {
                continue;
            };
            let quorum = request.quorum_seq();
            let approver = request
                .approvers
                .iter()
                .find(|(_, seq)| Some(**seq) == quorum)
                .map(|(p, _)| p.clone());
            let (Some(approver), Some(change)) =
                (approver, outcome(&self.state, &request_id, &request))
            else {
                continue;
            };
            let role = self
                .state
                .governance
                .credentials
                .get(&approver)
                .and_then(|c| keyledger_core::roles::role_of(&c.role))
                .unwrap_or(Role::Manager);
            let command = KeyCommand {
                actor: credential_actor(&approver, role),
                correlation_id: self.correlation_id(),
                at: self.now,
                change,
            };
            if request.awaiting_execution() && key::check(&self.state, &command).is_ok() {
                return self.execute(command).map(Some);
            }
        }
        Ok(None)
    }

    /// A manager withdraws a deletion request (`unsetKeyForDeletion`).
    pub(super) fn cancel(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(request_id) = self.rng.pick(&self.requests).cloned() else {
            return Ok(None);
        };
        let deletion = self
            .state
            .governance
            .approvals
            .get(&request_id)
            .is_some_and(|a| a.operation == OP_KEY_DELETE);
        if !deletion {
            return Ok(None);
        }
        let change = ApprovalChange::Cancel(ApprovalCancelled {
            request_id,
            reason: "unsetKeyForDeletion".into(),
        });
        let actor = self.manager();
        let step = self.approval(actor, change)?;
        self.refresh_requests();
        Ok(step)
    }

    /// The scheduler closes requests that lapsed without their quorum
    /// (`KeyService::expire_approvals`).
    pub(super) fn expire_lapsed(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        if self.earliest_expiry.is_none_or(|t| self.now < t) {
            return Ok(None);
        }
        let lapsed = self.requests.iter().find(|id| {
            self.state
                .governance
                .approvals
                .get(*id)
                .is_some_and(|a| a.lapsed(self.now))
        });
        let Some(request_id) = lapsed.cloned() else {
            return Ok(None);
        };
        let command = ApprovalCommand {
            actor: Actor::system(),
            correlation_id: "approval-expiry".into(),
            at: self.now,
            change: ApprovalChange::Expire(ApprovalExpired { request_id }),
        };
        let drafts =
            approval::decide(&self.state, &command).map_err(|e| LifeError::Stuck(e.to_string()))?;
        let step = self.applied(drafts)?;
        self.refresh_requests();
        Ok(Some(step))
    }

    pub(super) fn approval(
        &mut self,
        actor: Option<Actor>,
        change: ApprovalChange,
    ) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(actor) = actor else {
            return Ok(None);
        };
        let command = ApprovalCommand {
            actor,
            correlation_id: self.correlation_id(),
            at: self.now,
            change,
        };
        match approval::decide(&self.state, &command) {
            Ok(drafts) => self.applied(drafts).map(Some),
            Err(_) => Ok(None),
        }
    }
}

/// The key change that executes `request` (`key.destroyed` or `key.purged`
/// naming the request).
fn outcome(state: &Projections, request_id: &str, request: &Approval) -> Option<KeyChange> {
    let key_id = request.target.clone();
    let approval_request_id = Some(request_id.to_string());
    match request.operation.as_str() {
        OP_KEY_DELETE => Some(KeyChange::Destroy(KeyDestroyed {
            key_id,
            force: false,
            approval_request_id,
        })),
        OP_KEY_PURGE => Some(KeyChange::Purge(KeyPurged {
            versions_shredded: state
                .keys
                .get(&key_id)
                .map_or(0, |k| u32::try_from(k.versions.len()).unwrap_or(u32::MAX)),
            key_id,
            approval_request_id,
        })),
        _ => None,
    }
}
