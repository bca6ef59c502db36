//! Given/when/then tests of the approval aggregate.

use super::*;
use crate::decide::harness::{Given, given};
use crate::event::{AuthMethod, Role};

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T01:00:00Z";
const LATE: &str = "2026-01-09T00:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn manager(principal: &str) -> Actor {
    Actor {
        principal: principal.into(),
        role: Role::Manager,
        auth: AuthMethod::Bearer,
    }
}

fn requested() -> ApprovalRequested {
    ApprovalRequested {
        request_id: "req-1".into(),
        operation: "key.delete".into(),
        target: "k".into(),
        required_approvals: 1,
        expires_at: "2026-01-08T00:00:00Z".into(),
    }
}

fn granted(approver: &str) -> ApprovalGranted {
    ApprovalGranted {
        request_id: "req-1".into(),
        approver: approver.into(),
    }
}

/// alice's request req-1 (delete k, one approval, a week).
fn pending() -> Given {
    given().event(T0, &manager("alice"), &requested())
}

fn when_by(
    actor: Actor,
    at: &str,
    change: ApprovalChange,
) -> impl FnOnce(&Projections) -> Result<Vec<EventDraft>, Refusal> {
    let command = ApprovalCommand {
        actor,
        correlation_id: "c".into(),
        at: t(at),
        change,
    };
    move |state| decide(state, &command)
}

fn draft<P: EventPayload>(actor: Actor, p: &P) -> EventDraft {
    EventDraft::new(actor, "c", p).expect("draft")
}

fn denied(denial: ApprovalDenial) -> Refusal {
    Refusal::ApprovalDenied {
        request_id: "req-1".into(),
        denial,
    }
}

#[test]
fn a_request_id_is_used_once() {
    given()
        .when(when_by(
            manager("alice"),
            T0,
            ApprovalChange::Request(requested()),
        ))
        .then_expect_events(&[draft(manager("alice"), &requested())]);
    pending()
        .when(when_by(
            manager("bob"),
            T1,
            ApprovalChange::Request(requested()),
        ))
        .then_expect_refusal(Refusal::ApprovalDuplicate("req-1".into()));
}

#[test]
fn another_principal_approves_in_time() {
    pending()
        .when(when_by(
            manager("bob"),
            T1,
            ApprovalChange::Grant(granted("bob")),
        ))
        .then_expect_events(&[draft(manager("bob"), &granted("bob"))]);
    pending()
        .when(when_by(
            manager("alice"),
            T1,
            ApprovalChange::Grant(granted("alice")),
        ))
        .then_expect_refusal(denied(ApprovalDenial::SelfApproval {
            principal: "alice".into(),
            operation: "key.delete".into(),
        }));
    pending()
        .when(when_by(
            manager("bob"),
            LATE,
            ApprovalChange::Grant(granted("bob")),
        ))
        .then_expect_refusal(denied(ApprovalDenial::Expired {
            expires_at: "2026-01-08T00:00:00Z".into(),
        }));
    // The approval names who approved: the actor.
    pending()
        .when(when_by(
            manager("mallory"),
            T1,
            ApprovalChange::Grant(granted("bob")),
        ))
        .then_expect_refusal(Refusal::ApprovalMismatch(
            "the approver is not the principal who approved".into(),
        ));
    given()
        .when(when_by(
            manager("bob"),
            T1,
            ApprovalChange::Grant(granted("bob")),
        ))
        .then_expect_refusal(denied(ApprovalDenial::NotFound("req-1".into())));
}

#[test]
fn a_request_with_its_quorum_belongs_to_the_worker() {
    let cancel = ApprovalCancelled {
        request_id: "req-1".into(),
        reason: "changed my mind".into(),
    };
    pending()
        .when(when_by(
            manager("alice"),
            T1,
            ApprovalChange::Cancel(cancel.clone()),
        ))
        .then_expect_events(&[draft(manager("alice"), &cancel)]);
    pending()
        .event(T1, &manager("bob"), &granted("bob"))
        .when(when_by(
            manager("alice"),
            T1,
            ApprovalChange::Cancel(cancel),
        ))
        .then_expect_refusal(denied(ApprovalDenial::QuorumReached));
}

#[test]
fn only_a_lapsed_request_expires() {
    let expired = ApprovalExpired {
        request_id: "req-1".into(),
    };
    pending()
        .when(when_by(
            Actor::system(),
            T1,
            ApprovalChange::Expire(expired.clone()),
        ))
        .then_expect_refusal(Refusal::NotLapsed("req-1".into()));
    pending()
        .when(when_by(
            Actor::system(),
            LATE,
            ApprovalChange::Expire(expired.clone()),
        ))
        .then_expect_events(&[draft(Actor::system(), &expired)]);
}

#[test]
fn an_execution_needs_the_quorum() {
    let executed = |quorum_seq| OperationExecuted {
        request_id: "req-1".into(),
        operation: "key.delete".into(),
        target: "k".into(),
        quorum_seq,
    };
    pending()
        .when(when_by(
            Actor::system(),
            T1,
            ApprovalChange::Execute(executed(1)),
        ))
        .then_expect_refusal(Refusal::QuorumNotReached {
            request_id: "req-1".into(),
            why: "0 of 1 approvals".into(),
        });
    pending()
        .event(T1, &manager("bob"), &granted("bob"))
        .when(when_by(
            Actor::system(),
            T1,
            ApprovalChange::Execute(executed(1)),
        ))
        .then_expect_events(&[draft(Actor::system(), &executed(1))]);
}
