//! Given/when/then tests of the master-key aggregate.

use base64::Engine;

use super::*;
use crate::decide::harness::{Given, given};
use crate::event::{AuthMethod, KeyOwnerRegistered, MasterKeyLoadApproved, Role};

const T0: &str = "2026-01-01T00:00:00Z";
const INSTANCE: &str = "test";

fn owner(id: &str) -> Actor {
    Actor {
        principal: id.into(),
        role: Role::KeyOwner,
        auth: AuthMethod::KeyOwnerCredential,
    }
}

fn unsigned_ref() -> SignedCommandRef {
    SignedCommandRef {
        digest: "00".into(),
        document: "{}".into(),
        signatures: vec![],
    }
}

/// Key owner "o1" registered.
fn with_owner() -> Given {
    given().event(
        T0,
        &Actor::system(),
        &KeyOwnerRegistered {
            owner_id: "o1".into(),
            name: "owner one".into(),
            public_key: base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            command: None,
        },
    )
}

fn part(owner_id: &str, generation: u32) -> MasterKeyPartLoaded {
    MasterKeyPartLoaded {
        generation,
        owner_id: owner_id.into(),
        part_index: 1,
        verification_pattern: "vp-part".into(),
    }
}

fn when_by(
    actor: Actor,
    change: MasterKeyChange,
) -> impl FnOnce(&Projections) -> Result<Vec<EventDraft>, Refusal> {
    let command = MasterKeyCommand {
        actor,
        correlation_id: "c".into(),
        at: DateTime::parse_from_rfc3339(T0)
            .expect("time")
            .with_timezone(&Utc),
        change,
    };
    move |state| decide(state, INSTANCE, &command)
}

#[test]
fn parts_come_from_registered_owners_once_loading_is_approved() {
    with_owner()
        .when(when_by(
            owner("o2"),
            MasterKeyChange::LoadPart(part("o2", 1)),
        ))
        .then_expect_refusal(Refusal::UnknownKeyOwner("o2".into()));
    with_owner()
        .when(when_by(
            owner("o1"),
            MasterKeyChange::LoadPart(part("o1", 1)),
        ))
        .then_expect_refusal(Refusal::LoadNotApproved(1));
    let approved = || {
        with_owner().event(
            T0,
            &Actor::system(),
            &MasterKeyLoadApproved {
                generation: 1,
                command: unsigned_ref(),
            },
        )
    };
    approved()
        .when(when_by(
            owner("o1"),
            MasterKeyChange::LoadPart(part("o1", 1)),
        ))
        .then_expect_events(&[EventDraft::new(owner("o1"), "c", &part("o1", 1)).expect("draft")]);
    approved()
        .when(when_by(
            owner("o1"),
            MasterKeyChange::LoadPart(part("o1", 2)),
        ))
        .then_expect_refusal(ceremony(
            "parts are loaded for generation 1 (or the current one, to unseal), not 2".into(),
        ));
}

#[test]
fn activation_needs_the_administrators_and_a_commit() {
    let activated = MasterKeyActivated {
        generation: 1,
        verification_pattern: "vp".into(),
        command: None,
    };
    with_owner()
        .when(when_by(
            Actor::system(),
            MasterKeyChange::Activate(activated.clone()),
        ))
        .then_expect_refusal(Refusal::CommandMissing);
    let current = with_owner().event(T0, &Actor::system(), &activated);
    current
        .when(when_by(
            Actor::system(),
            MasterKeyChange::Unseal(InstanceUnsealed {
                master_key_generation: 2,
                verification_pattern: "vp".into(),
            }),
        ))
        .then_expect_refusal(ceremony(
            "generation 2 is not the current master key".into(),
        ));
}
