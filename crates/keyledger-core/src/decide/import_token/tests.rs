//! Given/when/then tests of the import-token aggregate.

use super::*;
use crate::decide::harness::{Given, given};
use crate::event::{AuthMethod, EventPayload, MasterKeyActivated};

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:05:00Z";
const LATE: &str = "2026-01-01T01:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn acting(role: Role) -> Actor {
    Actor {
        principal: "w".into(),
        role,
        auth: AuthMethod::LocalCli,
    }
}

fn created(max_retrievals: u32) -> ImportTokenCreated {
    ImportTokenCreated {
        token_id: "tok".into(),
        expiration_date: "2026-01-01T00:10:00Z".into(),
        max_retrievals,
        public_key_digest: "ab".into(),
    }
}

fn retrieved(remaining_retrievals: u32) -> ImportTokenRetrieved {
    ImportTokenRetrieved {
        token_id: "tok".into(),
        remaining_retrievals,
    }
}

fn with_master_key() -> Given {
    given().event(
        T0,
        &Actor::system(),
        &MasterKeyActivated {
            generation: 1,
            verification_pattern: "vp".into(),
            command: None,
        },
    )
}

fn when_by(
    actor: Actor,
    at: &str,
    change: ImportTokenChange,
) -> impl FnOnce(&Projections) -> Result<Vec<EventDraft>, Refusal> {
    let command = ImportTokenCommand {
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

#[test]
fn a_token_is_made_under_a_master_key_within_bounds() {
    let writer = acting(Role::Writer);
    with_master_key()
        .when(when_by(
            writer.clone(),
            T0,
            ImportTokenChange::Create(created(2)),
        ))
        .then_expect_events(&[draft(writer.clone(), &created(2))]);
    given()
        .when(when_by(
            writer.clone(),
            T0,
            ImportTokenChange::Create(created(2)),
        ))
        .then_expect_refusal(Refusal::NoMasterKey);
    with_master_key()
        .when(when_by(
            writer.clone(),
            T0,
            ImportTokenChange::Create(created(501)),
        ))
        .then_expect_refusal(Refusal::ImportTokenInvalid(
            "max_retrievals must be 1 to 500".into(),
        ));
    with_master_key()
        .when(when_by(
            acting(Role::Reader),
            T0,
            ImportTokenChange::Create(created(2)),
        ))
        .then_expect_refusal(Refusal::RoleNotAllowed {
            role: Role::Reader,
            command: "create_import_token",
            need: Need::Writer,
        });
}

#[test]
fn retrievals_count_down_until_the_token_expires() {
    let writer = acting(Role::Writer);
    let token = || with_master_key().event(T0, &writer, &created(2));
    token()
        .when(when_by(
            writer.clone(),
            T1,
            ImportTokenChange::Retrieve(retrieved(1)),
        ))
        .then_expect_events(&[draft(writer.clone(), &retrieved(1))]);
    token()
        .when(when_by(
            writer.clone(),
            T1,
            ImportTokenChange::Retrieve(retrieved(2)),
        ))
        .then_expect_refusal(Refusal::ImportTokenInvalid(
            "remaining_retrievals is not one less than the token had".into(),
        ));
    token()
        .event(T1, &writer, &retrieved(1))
        .event(T1, &writer, &retrieved(0))
        .when(when_by(
            writer.clone(),
            T1,
            ImportTokenChange::Retrieve(retrieved(0)),
        ))
        .then_expect_refusal(Refusal::ImportTokenExhausted);
    token()
        .when(when_by(
            writer.clone(),
            LATE,
            ImportTokenChange::Retrieve(retrieved(1)),
        ))
        .then_expect_refusal(Refusal::ImportTokenExpired);
    with_master_key()
        .when(when_by(
            writer,
            T1,
            ImportTokenChange::Retrieve(retrieved(1)),
        ))
        .then_expect_refusal(Refusal::ImportTokenNotFound);
}
