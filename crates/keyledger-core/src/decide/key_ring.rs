//! The key-ring aggregate: creating and deleting key rings, decided
//! against the instance's projections.
//!
//! A key ring is created with a new, well-formed id and deleted when it
//! exists, is not `default` and holds no key (a forced deletion first moves
//! its destroyed keys to `default`: `key.moved`, decided by the key
//! aggregate). Both need a manager's role and a credential in force
//! ([`super::check_credential`]). As for keys, a command is the event it
//! records; the verifier rebuilds it from the logged event
//! ([`KeyRingCommand::from_envelope`]) and asks the same [`check`].

use chrono::{DateTime, Utc};

use super::Refusal;
use crate::event::{Actor, Envelope, EventDraft, KeyRingCreated, KeyRingDeleted};
use crate::keys::projection::DEFAULT_KEY_RING;
use crate::projections::Projections;
use crate::roles::Need;

/// One change to the instance's key rings: the payload of its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRingChange {
    /// Create a key ring.
    Create(KeyRingCreated),
    /// Delete an empty key ring.
    Delete(KeyRingDeleted),
}

/// A key-ring command: who asks, when, under which correlation id, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRingCommand {
    /// Who asks.
    pub actor: Actor,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// The time the command is decided at.
    pub at: DateTime<Utc>,
    /// What it asks for.
    pub change: KeyRingChange,
}

impl KeyRingCommand {
    /// The command a stored key-ring event records; `None` for other
    /// events, `Some(Err)` for one that does not read.
    pub fn from_envelope(envelope: &Envelope<'_>) -> Option<Result<KeyRingCommand, String>> {
        let change = super::read_change(envelope, KeyRingChange::Create)
            .or_else(|| super::read_change(envelope, KeyRingChange::Delete))?;
        Some(change.and_then(|change| {
            Ok(KeyRingCommand {
                actor: envelope.actor.clone(),
                correlation_id: envelope.correlation_id.clone(),
                at: super::recorded_at(envelope)?,
                change,
            })
        }))
    }
}

/// A key ring id: 2-100 characters of letters, digits and `-`.
pub fn valid_id(id: &str) -> bool {
    (2..=100).contains(&id.chars().count())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Decides a key-ring command against the state before it: its one event,
/// or why it is refused.
pub fn decide(state: &Projections, command: &KeyRingCommand) -> Result<Vec<EventDraft>, Refusal> {
    check(state, command)?;
    let (actor, correlation_id) = (command.actor.clone(), command.correlation_id.as_str());
    let draft = match &command.change {
        KeyRingChange::Create(p) => EventDraft::new(actor, correlation_id, p),
        KeyRingChange::Delete(p) => EventDraft::new(actor, correlation_id, p),
    };
    Ok(vec![draft.map_err(|e| Refusal::Invalid(e.to_string()))?])
}

/// The rules of [`decide`] without building the event.
pub fn check(state: &Projections, command: &KeyRingCommand) -> Result<(), Refusal> {
    super::check_credential(state, &command.actor)?;
    let keys = &state.keys;
    let name = |id: &str| id.chars().take(128).collect::<String>();
    match &command.change {
        KeyRingChange::Create(p) => {
            if !valid_id(&p.key_ring_id) {
                return Err(Refusal::Invalid(
                    "a key ring id must be 2-100 characters of letters, digits and '-'".into(),
                ));
            }
            if keys.key_ring_exists(&p.key_ring_id) {
                return Err(Refusal::KeyRingExists(name(&p.key_ring_id)));
            }
            super::key::check_role_for(&command.actor, Need::Manager, "createKeyRing")
        }
        KeyRingChange::Delete(p) => {
            if p.key_ring_id == DEFAULT_KEY_RING {
                return Err(Refusal::Invalid(
                    "the default key ring cannot be deleted".into(),
                ));
            }
            if !keys.key_rings.contains(&p.key_ring_id) {
                return Err(Refusal::KeyRingUnknown(name(&p.key_ring_id)));
            }
            if keys.keys.values().any(|k| k.key_ring_id == p.key_ring_id) {
                return Err(Refusal::KeyRingNotEmpty(name(&p.key_ring_id)));
            }
            super::key::check_role_for(&command.actor, Need::Manager, "deleteKeyRing")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::harness::given;
    use crate::event::{AuthMethod, KeyCreated, MasterKeyActivated, Role};

    const T0: &str = "2026-01-01T00:00:00Z";

    fn manager() -> Actor {
        Actor {
            principal: "m".into(),
            role: Role::Manager,
            auth: AuthMethod::LocalCli,
        }
    }

    fn when(
        actor: Actor,
        change: KeyRingChange,
    ) -> impl FnOnce(&Projections) -> Result<Vec<EventDraft>, Refusal> {
        let command = KeyRingCommand {
            actor,
            correlation_id: "c".into(),
            at: DateTime::parse_from_rfc3339(T0)
                .expect("time")
                .with_timezone(&Utc),
            change,
        };
        move |state| decide(state, &command)
    }

    fn ring(id: &str) -> KeyRingCreated {
        KeyRingCreated {
            key_ring_id: id.into(),
        }
    }

    fn deleted(id: &str) -> KeyRingDeleted {
        KeyRingDeleted {
            key_ring_id: id.into(),
        }
    }

    #[test]
    fn a_key_ring_is_created_once_and_deleted_empty() {
        given()
            .when(when(manager(), KeyRingChange::Create(ring("r1"))))
            .then_expect_events(&[EventDraft::new(manager(), "c", &ring("r1")).expect("draft")]);
        given()
            .event(T0, &manager(), &ring("r1"))
            .when(when(manager(), KeyRingChange::Create(ring("r1"))))
            .then_expect_refusal(Refusal::KeyRingExists("r1".into()));
        given()
            .when(when(manager(), KeyRingChange::Create(ring("default"))))
            .then_expect_refusal(Refusal::KeyRingExists("default".into()));
        given()
            .when(when(manager(), KeyRingChange::Delete(deleted("r1"))))
            .then_expect_refusal(Refusal::KeyRingUnknown("r1".into()));
        let writer = Actor {
            role: Role::Writer,
            ..manager()
        };
        let refused = given()
            .when(when(writer, KeyRingChange::Create(ring("r1"))))
            .into_refusal();
        assert!(
            matches!(refused, Some(Refusal::RoleNotAllowed { .. })),
            "{refused:?}"
        );
        let key = KeyCreated {
            key_id: "k".into(),
            name: "k".into(),
            description: None,
            key_ring_id: "r1".into(),
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
                T0,
                &Actor::system(),
                &MasterKeyActivated {
                    generation: 1,
                    verification_pattern: "vp".into(),
                    command: None,
                },
            )
            .event(T0, &manager(), &ring("r1"))
            .event(T0, &manager(), &key)
            .when(when(manager(), KeyRingChange::Delete(deleted("r1"))))
            .then_expect_refusal(Refusal::KeyRingNotEmpty("r1".into()));
    }
}
