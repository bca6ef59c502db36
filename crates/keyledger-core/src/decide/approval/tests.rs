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
        auth: AuthMethod::LocalCli,
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

/// A master key and root key `k` with dual-authorisation delete, by alice.
fn dual_auth_key() -> Given {
    let created = crate::event::KeyCreated {
        key_id: "k".into(),
        name: "k".into(),
        description: None,
        key_ring_id: "default".into(),
        extractable: false,
        imported: false,
        algorithm: "AES".into(),
        bit_length: 256,
        version_id: "k-v1".into(),
        key_check_value: "00".into(),
        expiration_date: None,
        aliases: vec![],
        activation_date: None,
        import_token_id: None,
    };
    given()
        .event(
            "2025-12-31T00:00:00Z",
            &Actor::system(),
            &crate::event::MasterKeyActivated {
                generation: 1,
                verification_pattern: "vp".into(),
                command: None,
            },
        )
        .event("2025-12-31T00:00:00Z", &manager("alice"), &created)
        .event(
            "2025-12-31T00:00:00Z",
            &manager("alice"),
            &crate::event::KeyPolicyUpdated {
                key_id: "k".into(),
                policy_type: "dualAuthDelete".into(),
                enabled: true,
                interval_month: None,
            },
        )
}

/// alice's request req-1 (delete k, one approval, a week).
fn pending() -> Given {
    dual_auth_key().event(T0, &manager("alice"), &requested())
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
    dual_auth_key()
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
    // Seqs 0-2 make the key, 3 is the request, 4 the approval.
    pending()
        .when(when_by(
            Actor::system(),
            T1,
            ApprovalChange::Execute(executed(4)),
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
            ApprovalChange::Execute(executed(4)),
        ))
        .then_expect_events(&[draft(Actor::system(), &executed(4))]);
}

/// A request is one the key service makes: for a gated operation on an
/// existing dual-authorisation key in a state that allows it, by a role
/// that may take it, one approval, expiring within the week, none open.
#[test]
fn a_request_has_the_shape_the_key_service_gives_it() {
    let request = |f: fn(&mut ApprovalRequested)| {
        let mut r = requested();
        r.request_id = "req-2".into();
        f(&mut r);
        ApprovalChange::Request(r)
    };
    let invalid = |dual: Given, change: ApprovalChange, actor: Actor| {
        dual.when(when_by(actor, T0, change))
            .into_refusal()
            .expect("refused")
    };
    type Edit = fn(&mut ApprovalRequested);
    let cases: [(Edit, &str); 4] = [
        (
            |r| r.operation = "key.export".into(),
            "approval_request_invalid",
        ),
        (|r| r.required_approvals = 2, "approval_request_invalid"),
        (
            |r| r.expires_at = "2026-01-09T00:00:00Z".into(),
            "approval_request_invalid",
        ),
        (|r| r.target = "nope".into(), "unknown_key"),
    ];
    for (f, code) in cases {
        let refusal = invalid(dual_auth_key(), request(f), manager("alice"));
        let expected = match code {
            "unknown_key" => matches!(refusal, Refusal::UnknownKey(_)),
            _ => matches!(refusal, Refusal::ApprovalRequestInvalid(_)),
        };
        assert!(expected, "{code}: {refusal:?}");
    }
    // One open request per operation and key.
    let refusal = invalid(pending(), request(|_| {}), manager("bob"));
    assert!(
        matches!(refusal, Refusal::ApprovalRequestInvalid(_)),
        "{refusal:?}"
    );
    // A writer may not start a delete.
    let writer = Actor {
        role: Role::Writer,
        ..manager("carol")
    };
    let refusal = invalid(dual_auth_key(), request(|_| {}), writer);
    assert!(
        matches!(refusal, Refusal::RoleNotAllowed { .. }),
        "{refusal:?}"
    );
    // A key without dual authorisation has nothing to request.
    let plain = given()
        .event(
            "2025-12-31T00:00:00Z",
            &Actor::system(),
            &crate::event::MasterKeyActivated {
                generation: 1,
                verification_pattern: "vp".into(),
                command: None,
            },
        )
        .event(
            "2025-12-31T00:00:00Z",
            &manager("alice"),
            &crate::event::KeyCreated {
                key_id: "k".into(),
                name: "k".into(),
                description: None,
                key_ring_id: "default".into(),
                extractable: false,
                imported: false,
                algorithm: "AES".into(),
                bit_length: 256,
                version_id: "k-v1".into(),
                key_check_value: "00".into(),
                expiration_date: None,
                aliases: vec![],
                activation_date: None,
                import_token_id: None,
            },
        );
    let refusal = invalid(plain, request(|_| {}), manager("alice"));
    assert_eq!(refusal, Refusal::State(StateError::NotDualAuth));
}
