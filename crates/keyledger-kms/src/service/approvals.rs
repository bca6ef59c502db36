//! Approvals of gated key operations, as events: a request
//! (`approval.requested`, the requester is its actor), approvals by other
//! principals (`approval.granted`), cancellation (`approval.cancelled`) and
//! expiry (`approval.expired`, by [`KeyService::expire_approvals`]). The
//! approval that completes a quorum hands the request to the crypto worker
//! (`worker.rs`), which executes it and appends the outcome.
//!
//! Refusals are recorded as `key.operation_failed` (with the Key Protect
//! reason code) before the error is returned; nothing else changes.

use chrono::SecondsFormat;

use super::{KeyError, KeyService, failpoint};
use keyledger_core::decide::approval::ApprovalChange;
use keyledger_core::event::{
    Actor, ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRequested,
};
use keyledger_core::governance::{
    Approval, ApprovalDenial, ApprovalStatus, OP_KEY_DELETE, OP_KEY_PURGE,
};
use keyledger_core::governance::{check_cancel, check_grant};
use keyledger_core::keys::projection::KeyRecord;
use keyledger_core::keys::state::{self, DUAL_AUTH_WINDOW, KeyAction, StateError};
use keyledger_ledger::writer::Receipt;

/// What a gated command did.
#[derive(Debug)]
pub enum Gated {
    /// The operation ran; the receipt of its outcome event.
    Executed(Receipt),
    /// A request (or an approval short of the quorum) was recorded; the
    /// operation runs once the request has its approvals.
    Pending {
        request_id: String,
        receipt: Receipt,
    },
}

impl Gated {
    /// The receipt of the last event recorded.
    pub fn receipt(&self) -> &Receipt {
        match self {
            Gated::Executed(r) | Gated::Pending { receipt: r, .. } => r,
        }
    }
}

impl KeyService {
    /// Whether deleting (and purging) `key` needs a second principal: its
    /// own `dualAuthDelete` policy, or the instance's. The instance policy
    /// covers every key, not only keys created after it (issue 4's "dual
    /// auth for all keys"; Key Protect applies it to new keys only).
    /// Key Protect semantics: the instance `dualAuthDelete` policy applies
    /// to keys created while it is enabled (they inherit it in the key
    /// projection); older keys keep their own setting.
    pub(super) fn dual_auth_applies(&self, key: &KeyRecord) -> bool {
        key.dual_auth_delete.enabled
    }

    /// The request, pending and unexpired, for `operation` on `target`.
    pub(super) fn open_request(&self, operation: &str, target: &str) -> Option<(String, Approval)> {
        let now = self.now();
        self.read()
            .governance
            .open_approval(operation, target, now)
            .map(|(id, a)| (id.clone(), a.clone()))
    }

    /// Records `approval.requested` by `actor` for one approval by another
    /// principal within [`DUAL_AUTH_WINDOW`]. The caller holds the commands
    /// lock and has checked the operation.
    pub(super) fn request_approval(
        &self,
        actor: &Actor,
        correlation_id: &str,
        operation: &str,
        target: &str,
    ) -> Result<(String, Receipt), KeyError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let expires_at =
            (self.now() + DUAL_AUTH_WINDOW).to_rfc3339_opts(SecondsFormat::Millis, true);
        let event = ApprovalRequested {
            request_id: request_id.clone(),
            operation: operation.to_string(),
            target: target.to_string(),
            required_approvals: 1,
            expires_at,
        };
        let receipt =
            self.decide_approval(actor, correlation_id, ApprovalChange::Request(event))?;
        Ok((request_id, receipt))
    }

    /// The latest request for `operation` on `target` that has no outcome
    /// (pending, possibly lapsed, or cancelled/expired): the one a second
    /// authorisation answers to, so a refusal can say why precisely.
    pub(super) fn latest_request(
        &self,
        operation: &str,
        target: &str,
    ) -> Option<(String, Approval)> {
        self.read()
            .governance
            .latest_approval(operation, target)
            .filter(|(_, a)| {
                !matches!(
                    a.status,
                    ApprovalStatus::Executed(_) | ApprovalStatus::Failed(_)
                )
            })
            .map(|(id, a)| (id.clone(), a.clone()))
    }

    /// The second authorisation of `request` on `key` by `actor`: checks it
    /// against the approval rules (a refusal is recorded and returned),
    /// records the approval and, as it completes the quorum, has the worker
    /// execute the request (`force` is passed to a delete). The caller holds
    /// the commands lock and has checked the operation against the key.
    pub(super) fn second_authorisation(
        &self,
        actor: &Actor,
        correlation_id: &str,
        key: &KeyRecord,
        request: (String, Approval),
        force: bool,
    ) -> Result<Gated, KeyError> {
        let (request_id, approval) = request;
        if let Err(denial) = check_grant(&approval, &actor.principal, self.now()) {
            let action = action_of(&approval.operation);
            return Err(self.refuse(actor, correlation_id, &key.id, action, denial.into()));
        }
        self.grant(actor, correlation_id, &request_id, force)
    }

    /// Appends `approval.granted` by `actor` (already checked) and, once the
    /// quorum is in the log, executes the request.
    fn grant(
        &self,
        actor: &Actor,
        correlation_id: &str,
        request_id: &str,
        force: bool,
    ) -> Result<Gated, KeyError> {
        let event = ApprovalGranted {
            request_id: request_id.to_string(),
            approver: actor.principal.clone(),
        };
        let receipt = self.decide_approval(actor, correlation_id, ApprovalChange::Grant(event))?;
        let ready = self
            .read()
            .governance
            .approvals
            .get(request_id)
            .is_some_and(Approval::awaiting_execution);
        if !ready {
            return Ok(Gated::Pending {
                request_id: request_id.to_string(),
                receipt,
            });
        }
        failpoint::hit(failpoint::WORKER_AFTER_QUORUM);
        self.execute_approved(request_id, force)
            .map(Gated::Executed)
    }

    /// Approves a request by id (the generic form of the second
    /// authorisation): the operation is checked against its target's state
    /// first, the approval must pass the approval rules.
    pub fn approve_request(
        &self,
        actor: &Actor,
        correlation_id: &str,
        request_id: &str,
    ) -> Result<Gated, KeyError> {
        let _guard = self.lock_commands();
        let approval = self.approval(actor, correlation_id, request_id)?;
        let action = action_of(&approval.operation);
        let Some(key_action) = key_action(&approval.operation) else {
            let e = KeyError::Invalid(format!(
                "{:?} is not an operation of the key service",
                approval.operation.chars().take(64).collect::<String>()
            ));
            return Err(self.deny(actor, correlation_id, action, request_id, e));
        };
        let key = match self.key(&approval.target) {
            Ok(key) => key,
            Err(e) => return Err(self.refuse(actor, correlation_id, &approval.target, action, e)),
        };
        if let Err(e) = state::check_at(key.state, key_action, &key.timeline(), self.now()) {
            return Err(self.refuse(actor, correlation_id, &key.id, action, e.into()));
        }
        self.second_authorisation(
            actor,
            correlation_id,
            &key,
            (request_id.to_string(), approval),
            false,
        )
    }

    /// Cancels a pending request (any authorised principal may).
    pub fn cancel_approval(
        &self,
        actor: &Actor,
        correlation_id: &str,
        request_id: &str,
        reason: &str,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        let approval = self.approval(actor, correlation_id, request_id)?;
        self.cancel_checked(actor, correlation_id, request_id, &approval, reason)
    }

    /// Checks and records a cancellation (the caller holds the lock).
    pub(super) fn cancel_checked(
        &self,
        actor: &Actor,
        correlation_id: &str,
        request_id: &str,
        approval: &Approval,
        reason: &str,
    ) -> Result<Receipt, KeyError> {
        if let Err(denial) = check_cancel(approval, self.now()) {
            let action = action_of(&approval.operation);
            return Err(self.refuse(
                actor,
                correlation_id,
                &approval.target,
                action,
                denial.into(),
            ));
        }
        let event = ApprovalCancelled {
            request_id: request_id.to_string(),
            reason: reason.chars().take(256).collect(),
        };
        self.decide_approval(actor, correlation_id, ApprovalChange::Cancel(event))
    }

    /// Records `approval.expired` for every request past its expiry without
    /// its quorum; returns how many. Idempotent; run by the scheduler beside
    /// [`KeyService::expire_due`]. Requests that reached their quorum in time
    /// never expire: the worker owes them an outcome.
    pub fn expire_approvals(&self) -> Result<usize, KeyError> {
        let _guard = self.lock_commands();
        let lapsed = self.read().governance.lapsed_approvals(self.now());
        for request_id in &lapsed {
            let event = ApprovalExpired {
                request_id: request_id.clone(),
            };
            let change = ApprovalChange::Expire(event);
            self.decide_approval(&Actor::system(), "approval-expiry", change)?;
        }
        Ok(lapsed.len())
    }

    /// A request by id, or a recorded refusal.
    fn approval(
        &self,
        actor: &Actor,
        correlation_id: &str,
        request_id: &str,
    ) -> Result<Approval, KeyError> {
        let found = self.read().governance.approvals.get(request_id).cloned();
        found.ok_or_else(|| {
            let e = ApprovalDenial::NotFound(request_id.chars().take(64).collect());
            self.deny(actor, correlation_id, "approve", request_id, e.into())
        })
    }
}

/// Key Protect's name of the action a gated operation is.
pub(super) fn action_of(operation: &str) -> &'static str {
    match operation {
        OP_KEY_PURGE => "purge",
        OP_KEY_DELETE => "delete",
        _ => "approve",
    }
}

fn key_action(operation: &str) -> Option<KeyAction> {
    match operation {
        OP_KEY_PURGE => Some(KeyAction::Purge),
        OP_KEY_DELETE => Some(KeyAction::Delete),
        _ => None,
    }
}

/// `setKeyForDeletion`'s own checks: a dual-authorisation key, no request
/// already pending.
pub(super) fn check_new_deletion_request(
    dual_auth: bool,
    open: Option<&(String, Approval)>,
    key_id: &str,
) -> Result<(), KeyError> {
    if !dual_auth {
        return Err(StateError::NotDualAuth.into());
    }
    match open {
        Some((_, a)) => Err(ApprovalDenial::AlreadyPending {
            operation: OP_KEY_DELETE.into(),
            target: key_id.to_string(),
            requester: a.requester.clone(),
            expires_at: a.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
        .into()),
        None => Ok(()),
    }
}

/// The refusal of a dual-authorisation delete with no request to approve.
pub(super) fn authorizations_not_met() -> KeyError {
    StateError::AuthorizationsNotMet.into()
}
