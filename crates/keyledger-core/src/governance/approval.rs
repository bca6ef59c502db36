//! The rules of gated operations, as pure functions of an [`Approval`]: who
//! may approve a request and when, and when it may be cancelled. The key
//! service runs them before it appends `approval.granted` or
//! `approval.cancelled`; a verifier can replay the same functions over a log.
//!
//! A request (`approval.requested`) names an operation, its target, how many
//! approvals it needs from principals *other than the requester*, and when it
//! expires. Its quorum is reached at the seq of the approval that completes
//! it ([`Approval::quorum_seq`]); the crypto worker executes it then, once,
//! and appends an outcome that references the request. See
//! `docs/APPROVALS.md`.

use chrono::{DateTime, SecondsFormat, Utc};

use super::state::{Approval, ApprovalStatus};
use crate::reason::Reason;

/// Deleting a key (Key Protect's dual-authorisation delete); target: key id.
pub const OP_KEY_DELETE: &str = "key.delete";
/// Purging a destroyed key under dual authorisation; target: key id.
pub const OP_KEY_PURGE: &str = "key.purge";

/// Why an approval, a cancellation or a new request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalDenial {
    /// No request with this id.
    #[error("approval request {0:?} not found")]
    NotFound(String),
    /// The requester tried to approve their own request.
    #[error(
        "{principal} requested this {operation} and cannot approve it: a different principal must"
    )]
    SelfApproval {
        /// The requester, who tried to approve.
        principal: String,
        /// The gated operation.
        operation: String,
    },
    /// This principal already approved.
    #[error("{principal} already approved this request")]
    AlreadyApproved {
        /// The principal whose approval is already counted.
        principal: String,
    },
    /// The request expired.
    #[error("the approval request expired at {expires_at}")]
    Expired {
        /// When it expired (RFC 3339).
        expires_at: String,
    },
    /// The request was cancelled.
    #[error("the approval request was cancelled")]
    Cancelled,
    /// The request was executed.
    #[error("the approval request was already executed")]
    Executed,
    /// The request's execution failed.
    #[error("the approval request failed: {0}")]
    Failed(String),
    /// The request has its quorum and awaits execution.
    #[error("the approval request has its quorum and is being executed")]
    QuorumReached,
    /// The same operation on the same target is already pending.
    #[error("{operation} of {target} was already requested by {requester} (until {expires_at})")]
    AlreadyPending {
        /// The gated operation.
        operation: String,
        /// What it acts on (a key id).
        target: String,
        /// Who requested it.
        requester: String,
        /// When that request expires (RFC 3339).
        expires_at: String,
    },
    /// Nothing of this operation and target is pending.
    #[error("no {operation} of {target} is pending")]
    NothingPending {
        /// The gated operation.
        operation: String,
        /// What it would act on (a key id).
        target: String,
    },
}

impl ApprovalDenial {
    /// The reason code of this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            ApprovalDenial::NotFound(_) => Reason::NotFound,
            // The key is (already / not) set for deletion.
            ApprovalDenial::AlreadyPending { .. } | ApprovalDenial::NothingPending { .. } => {
                Reason::InvalidState
            }
            // Key Protect's answer to a delete without a valid second
            // authorisation, the requester's own included.
            _ => Reason::AuthorizationsNotMet,
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Why a request that is no longer pending cannot be acted on.
fn closed(approval: &Approval) -> Option<ApprovalDenial> {
    match &approval.status {
        ApprovalStatus::Pending => None,
        ApprovalStatus::Executed(_) => Some(ApprovalDenial::Executed),
        ApprovalStatus::Failed(reason) => Some(ApprovalDenial::Failed(reason.clone())),
        ApprovalStatus::Cancelled => Some(ApprovalDenial::Cancelled),
        ApprovalStatus::Expired => Some(ApprovalDenial::Expired {
            expires_at: rfc3339(approval.expires_at),
        }),
    }
}

/// Whether `approver` may approve `approval` at `now`: it must be pending,
/// unexpired, still short of its quorum, and `approver` must be neither the
/// requester nor someone who already approved it.
pub fn check_grant(
    approval: &Approval,
    approver: &str,
    now: DateTime<Utc>,
) -> Result<(), ApprovalDenial> {
    if let Some(denial) = closed(approval) {
        return Err(denial);
    }
    if now >= approval.expires_at {
        return Err(ApprovalDenial::Expired {
            expires_at: rfc3339(approval.expires_at),
        });
    }
    if approver == approval.requester {
        return Err(ApprovalDenial::SelfApproval {
            principal: approver.chars().take(128).collect(),
            operation: approval.operation.clone(),
        });
    }
    if approval.approvers.contains_key(approver) {
        return Err(ApprovalDenial::AlreadyApproved {
            principal: approver.chars().take(128).collect(),
        });
    }
    if approval.quorum_seq().is_some() {
        return Err(ApprovalDenial::QuorumReached);
    }
    Ok(())
}

/// Whether `approval` may be cancelled at `now`: pending, unexpired, and
/// not yet at its quorum (from then on the worker owns it).
pub fn check_cancel(approval: &Approval, now: DateTime<Utc>) -> Result<(), ApprovalDenial> {
    if let Some(denial) = closed(approval) {
        return Err(denial);
    }
    if now >= approval.expires_at {
        return Err(ApprovalDenial::Expired {
            expires_at: rfc3339(approval.expires_at),
        });
    }
    if approval.quorum_seq().is_some() {
        return Err(ApprovalDenial::QuorumReached);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Duration;

    use super::*;

    fn request(now: DateTime<Utc>) -> Approval {
        Approval {
            operation: OP_KEY_DELETE.into(),
            target: "k1".into(),
            requester: "alice".into(),
            required: 1,
            expires_at: now + Duration::days(7),
            approvers: BTreeMap::new(),
            requested_seq: 10,
            status: ApprovalStatus::Pending,
        }
    }

    #[test]
    fn only_another_principal_approves_in_time() {
        let now = Utc::now();
        let a = request(now);
        assert_eq!(check_grant(&a, "bob", now), Ok(()));
        assert_eq!(
            check_grant(&a, "alice", now),
            Err(ApprovalDenial::SelfApproval {
                principal: "alice".into(),
                operation: OP_KEY_DELETE.into()
            })
        );
        assert!(matches!(
            check_grant(&a, "bob", now + Duration::days(7)),
            Err(ApprovalDenial::Expired { .. })
        ));
        assert_eq!(
            check_grant(&a, "bob", now + Duration::days(7) - Duration::seconds(1)),
            Ok(())
        );
    }

    #[test]
    fn closed_or_complete_requests_take_no_approval_or_cancellation() {
        let now = Utc::now();
        let mut a = request(now);
        a.required = 2;
        a.approvers.insert("bob".into(), 11);
        assert_eq!(
            check_grant(&a, "bob", now),
            Err(ApprovalDenial::AlreadyApproved {
                principal: "bob".into()
            })
        );
        assert_eq!(check_grant(&a, "carol", now), Ok(()));
        a.approvers.insert("carol".into(), 12);
        assert_eq!(a.quorum_seq(), Some(12));
        assert_eq!(
            check_grant(&a, "dave", now),
            Err(ApprovalDenial::QuorumReached)
        );
        assert_eq!(check_cancel(&a, now), Err(ApprovalDenial::QuorumReached));
        for (status, denial) in [
            (ApprovalStatus::Cancelled, ApprovalDenial::Cancelled),
            (ApprovalStatus::Executed(13), ApprovalDenial::Executed),
            (
                ApprovalStatus::Failed("x".into()),
                ApprovalDenial::Failed("x".into()),
            ),
        ] {
            let mut b = request(now);
            b.status = status;
            assert_eq!(check_grant(&b, "bob", now), Err(denial.clone()));
            assert_eq!(check_cancel(&b, now), Err(denial));
        }
        assert_eq!(check_cancel(&request(now), now), Ok(()));
    }
}
