//! The approval aggregate: gated operations' requests, approvals,
//! cancellations, expiries and executions, decided against the instance's
//! projections with the approval rules ([`check_grant`], [`check_cancel`],
//! [`Approval::lapsed`], [`Approval::ready`]).
//!
//! As for keys, a command is the event it records ([`ApprovalChange`])
//! plus who asks and when; new request ids and expiry dates are made by the
//! caller. The verifier rebuilds the command from the logged event
//! ([`ApprovalCommand::from_envelope`]) and asks the same [`check`].

use chrono::{DateTime, Utc};

use super::Refusal;
use crate::event::{
    Actor, ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRequested, Envelope,
    EventDraft, EventPayload, OperationExecuted,
};
use crate::governance::approval::{OP_KEY_DELETE, OP_KEY_PURGE, check_cancel, check_grant};
use crate::governance::{Approval, ApprovalDenial, ApprovalStatus};
use crate::keys;
use crate::keys::state::{DUAL_AUTH_WINDOW, KeyAction, StateError};
use crate::projections::Projections;
use crate::roles::Need;

/// One change to one approval request: the payload of the event it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalChange {
    /// Open a request for a gated operation.
    Request(ApprovalRequested),
    /// Approve a request (the approver is the actor).
    Grant(ApprovalGranted),
    /// Cancel a pending request.
    Cancel(ApprovalCancelled),
    /// Close a request that lapsed without its quorum.
    Expire(ApprovalExpired),
    /// Record that the worker executed a request that has its quorum.
    Execute(OperationExecuted),
}

/// An approval command: who asks, when, under which correlation id, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalCommand {
    /// Who asks.
    pub actor: Actor,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// The time the command is decided at.
    pub at: DateTime<Utc>,
    /// What it asks for.
    pub change: ApprovalChange,
}

macro_rules! approval_changes {
    ($($variant:ident($payload:ty),)*) => {
        impl ApprovalChange {
            /// The request the change is about.
            pub fn request_id(&self) -> &str {
                match self { $(ApprovalChange::$variant(p) => &p.request_id,)* }
            }

            fn draft(&self, actor: &Actor, correlation_id: &str) -> Result<EventDraft, Refusal> {
                let draft = match self {
                    $(ApprovalChange::$variant(p) => EventDraft::new(actor.clone(), correlation_id, p),)*
                };
                draft.map_err(|e| Refusal::Invalid(e.to_string()))
            }

            /// The change a stored event records, if it is an approval
            /// change; `Err` when its payload does not read.
            pub fn from_envelope(envelope: &Envelope<'_>) -> Option<Result<ApprovalChange, String>> {
                $(
                    if let Some(p) = envelope.payload_as::<$payload>() {
                        return Some(p.map(ApprovalChange::$variant).map_err(|e| {
                            format!("payload is not a valid {}: {e}", <$payload>::TYPE)
                        }));
                    }
                )*
                None
            }
        }
    };
}

approval_changes! {
    Request(ApprovalRequested),
    Grant(ApprovalGranted),
    Cancel(ApprovalCancelled),
    Expire(ApprovalExpired),
    Execute(OperationExecuted),
}

impl ApprovalCommand {
    /// The command a stored approval event records; `None` for other
    /// events, `Some(Err)` for one that does not read.
    pub fn from_envelope(envelope: &Envelope<'_>) -> Option<Result<ApprovalCommand, String>> {
        let change = ApprovalChange::from_envelope(envelope)?;
        Some(change.and_then(|change| {
            let at = super::recorded_at(envelope)?;
            Ok(ApprovalCommand {
                actor: envelope.actor.clone(),
                correlation_id: envelope.correlation_id.clone(),
                at,
                change,
            })
        }))
    }
}

/// Decides an approval command against the state before it: the
/// command's one event, or why it is refused.
pub fn decide(state: &Projections, command: &ApprovalCommand) -> Result<Vec<EventDraft>, Refusal> {
    check(state, command)?;
    Ok(vec![
        command
            .change
            .draft(&command.actor, &command.correlation_id)?,
    ])
}

/// The rules of [`decide`] without building the event.
pub fn check(state: &Projections, command: &ApprovalCommand) -> Result<(), Refusal> {
    super::check_credential(state, &command.actor)?;
    let approvals = &state.governance.approvals;
    let request_id = command.change.request_id();
    let denied = |denial| Refusal::ApprovalDenied {
        request_id: request_id.chars().take(128).collect(),
        denial,
    };
    if let ApprovalChange::Request(p) = &command.change {
        if approvals.contains_key(&p.request_id) {
            return Err(Refusal::ApprovalDuplicate(
                p.request_id.chars().take(128).collect(),
            ));
        }
        return check_request(state, command, p);
    }
    let approval = approvals.get(request_id).ok_or_else(|| {
        denied(ApprovalDenial::NotFound(
            request_id.chars().take(128).collect(),
        ))
    })?;
    match &command.change {
        ApprovalChange::Request(_) => Ok(()),
        ApprovalChange::Grant(p) => {
            check_grant(approval, &p.approver, command.at).map_err(denied)?;
            if p.approver != command.actor.principal {
                return Err(Refusal::ApprovalMismatch(
                    "the approver is not the principal who approved".into(),
                ));
            }
            Ok(())
        }
        ApprovalChange::Cancel(_) => check_cancel(approval, command.at).map_err(denied),
        ApprovalChange::Expire(_) => {
            if approval.lapsed(command.at) {
                Ok(())
            } else {
                Err(Refusal::NotLapsed(request_id.chars().take(128).collect()))
            }
        }
        ApprovalChange::Execute(p) => {
            if (&approval.operation, &approval.target) != (&p.operation, &p.target) {
                return Err(Refusal::ApprovalMismatch(format!(
                    "request {:?} is for {} on {:?}",
                    p.request_id, approval.operation, approval.target
                )));
            }
            ready(approval, request_id, command.at)?;
            if approval.quorum_seq() != Some(p.quorum_seq) {
                return Err(Refusal::ApprovalMismatch(format!(
                    "quorum_seq {} is not the seq of the approval that completed the quorum ({:?})",
                    p.quorum_seq,
                    approval.quorum_seq()
                )));
            }
            Ok(())
        }
    }
}

/// The approvals a request of the key service needs: one, by a principal
/// other than the requester (dual authorisation).
pub const REQUIRED_APPROVALS: u8 = 1;

/// A request is one the key service makes: the first authorisation of a
/// dual-authorisation delete (`key.delete`, by `setKeyForDeletion`) or
/// purge (`key.purge`, by the first `purge`) of an existing key with dual
/// authorisation, in a state that allows that action at the time, by a
/// role that may take it, when no request for the same operation and key
/// is open; it needs [`REQUIRED_APPROVALS`] and expires within
/// [`DUAL_AUTH_WINDOW`] of the request.
fn check_request(
    state: &Projections,
    command: &ApprovalCommand,
    p: &ApprovalRequested,
) -> Result<(), Refusal> {
    let invalid = |why: String| Refusal::ApprovalRequestInvalid(why);
    let (action, need) = match p.operation.as_str() {
        OP_KEY_DELETE => (KeyAction::SetKeyForDeletion, Need::Manager),
        OP_KEY_PURGE => (KeyAction::Purge, Need::Manager),
        other => {
            return Err(invalid(format!(
                "no operation {:?} is gated by approvals",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    let key = state
        .keys
        .get(&p.target)
        .ok_or_else(|| Refusal::UnknownKey(p.target.chars().take(128).collect()))?;
    keys::state::check_key_type(key.extractable, action)?;
    keys::state::check_at(key.state, action, &key.timeline(), command.at)?;
    if !key.dual_auth().enabled {
        return Err(Refusal::State(StateError::NotDualAuth));
    }
    if state
        .governance
        .open_approval(&p.operation, &p.target, command.at)
        .is_some()
    {
        return Err(invalid(format!(
            "a {} request for this key is already open",
            p.operation
        )));
    }
    if p.required_approvals != REQUIRED_APPROVALS {
        return Err(invalid(format!(
            "it needs {} approvals, not {REQUIRED_APPROVALS}",
            p.required_approvals
        )));
    }
    let expires = DateTime::parse_from_rfc3339(&p.expires_at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid("expires_at is not an RFC 3339 time".into()))?;
    if expires <= command.at || expires > command.at + DUAL_AUTH_WINDOW {
        return Err(invalid(format!(
            "it expires at {}, not within {} days of the request",
            p.expires_at.chars().take(40).collect::<String>(),
            DUAL_AUTH_WINDOW.num_days()
        )));
    }
    super::key::check_role_for(&command.actor, need, action_name(&p.operation))
}

fn action_name(operation: &str) -> &'static str {
    if operation == OP_KEY_PURGE {
        "purge"
    } else {
        "setKeyForDeletion"
    }
}

/// The request is pending, unexpired and has its quorum at `at`.
pub fn ready(approval: &Approval, request_id: &str, at: DateTime<Utc>) -> Result<(), Refusal> {
    if approval.ready(at) {
        return Ok(());
    }
    let why = if approval.status != ApprovalStatus::Pending {
        format!("the request is {:?}", approval.status)
    } else if at >= approval.expires_at {
        format!(
            "the request expired at {}",
            approval.expires_at.to_rfc3339()
        )
    } else {
        format!(
            "{} of {} approvals",
            approval.approvers.len(),
            approval.required
        )
    };
    Err(Refusal::QuorumNotReached {
        request_id: request_id.chars().take(128).collect(),
        why,
    })
}

#[cfg(test)]
mod tests;
