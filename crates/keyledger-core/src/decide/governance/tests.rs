//! Given/when/then tests of the instance-governance aggregate.

use ed25519_dalek::SigningKey;

use super::*;
use crate::decide::harness::{Given, given};
use crate::event::InstanceCreated;
use crate::governance::CommandDocument;

const INSTANCE: &str = "test";
const T0: &str = "2026-01-01T00:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn admin_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn b64(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes())
}

fn id(key: &SigningKey) -> String {
    admin_id(&key.verifying_key())
}

/// An instance in imprint mode with administrator 1.
fn genesis() -> Given {
    given().event(
        T0,
        &Actor::operator("op"),
        &InstanceCreated {
            origin: "keyledger/test".into(),
            ledger_key_id: "00000000".into(),
            ledger_public_key: b64(&admin_key(9)),
            initial_admin_id: id(&admin_key(1)),
            initial_admin_public_key: b64(&admin_key(1)),
        },
    )
}

fn signed(command: AdminCommand, signers: &[&SigningKey]) -> SignedCommand {
    let document =
        CommandDocument::new(INSTANCE, command, t("2026-01-02T00:00:00Z")).expect("document");
    let mut s = SignedCommand::unsigned(&document).expect("unsigned");
    for k in signers {
        s.sign(k);
    }
    s
}

fn decide_at(
    signed: &SignedCommand,
) -> impl FnOnce(&Projections) -> Result<Vec<EventDraft>, Refusal> + '_ {
    move |state| {
        decide(
            state,
            &GovernanceCommand {
                instance: INSTANCE,
                signed,
                correlation_id: "c",
                at: t("2026-01-01T01:00:00Z"),
            },
        )
    }
}

fn add(n: u8) -> AdminCommand {
    AdminCommand::AddAdmin {
        name: format!("admin-{n}"),
        public_key: b64(&admin_key(n)),
    }
}

fn added(n: u8, signed: &SignedCommand) -> AdminAdded {
    AdminAdded {
        admin_id: id(&admin_key(n)),
        name: format!("admin-{n}"),
        public_key: b64(&admin_key(n)),
        command: Some(signed.to_ref()),
    }
}

fn by(signers: &[&SigningKey]) -> Actor {
    let mut ids: Vec<String> = signers.iter().map(|k| id(k)).collect();
    ids.sort();
    signers_actor(&ids)
}

#[test]
fn an_administrator_adds_an_administrator_in_imprint_mode() {
    let one = admin_key(1);
    let s = signed(add(2), &[&one]);
    genesis()
        .when(decide_at(&s))
        .then_expect_events(&[EventDraft::new(by(&[&one]), "c", &added(2, &s)).expect("draft")]);
}

#[test]
fn a_command_signed_by_no_administrator_is_refused() {
    let stranger = admin_key(7);
    let s = signed(add(2), &[&stranger]);
    let refusal = genesis().when(decide_at(&s));
    refusal.then_expect_refusal(Refusal::Denied(Denial::NotAnAdmin {
        admin_id: id(&stranger),
    }));
}

#[test]
fn a_command_is_used_once() {
    let one = admin_key(1);
    let s = signed(add(2), &[&one]);
    genesis()
        .event(T0, &by(&[&one]), &added(2, &s))
        .when(decide_at(&s))
        .then_expect_refusal(Refusal::Denied(Denial::Replayed {
            nonce: CommandDocument::parse(&s.document).expect("doc").nonce,
        }));
}

#[test]
fn thresholds_above_the_administrators_are_refused() {
    let one = admin_key(1);
    let s = signed(
        AdminCommand::SetThresholds {
            signature_threshold: 2,
            revocation_threshold: 2,
        },
        &[&one],
    );
    genesis()
        .when(decide_at(&s))
        .then_expect_refusal(Refusal::Denied(Denial::ThresholdAboveAdmins {
            threshold: 2,
            admins: 1,
        }));
}

#[test]
fn two_of_two_needs_both_signatures() {
    let (one, two) = (admin_key(1), admin_key(2));
    let add_two = signed(add(2), &[&one]);
    let set = signed(
        AdminCommand::SetThresholds {
            signature_threshold: 2,
            revocation_threshold: 2,
        },
        &[&one],
    );
    let two_of_two = || {
        genesis()
            .event(T0, &by(&[&one]), &added(2, &add_two))
            .event(
                T0,
                &by(&[&one]),
                &AdminThresholdsSet {
                    signature_threshold: 2,
                    revocation_threshold: 2,
                    command: set.to_ref(),
                },
            )
    };
    let alone = signed(add(3), &[&one]);
    two_of_two()
        .when(decide_at(&alone))
        .then_expect_refusal(Refusal::Denied(Denial::NotEnoughSignatures {
            kind: "admin.add".into(),
            have: 1,
            need: 2,
        }));
    let both = signed(add(3), &[&one, &two]);
    two_of_two()
        .when(decide_at(&both))
        .then_expect_events(&[
            EventDraft::new(by(&[&one, &two]), "c", &added(3, &both)).expect("draft")
        ]);
}
