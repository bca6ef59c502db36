//! The event model: the envelope every record carries, who acted, and the
//! catalogue of event types with their payloads.
//!
//! The writer serialises an envelope exactly once ([`EnvelopeOut`] fixes the
//! field order); the stored bytes are what is hashed, signed, exported and
//! verified. Readers parse them with [`Envelope::parse`] and never
//! re-serialise; the verifier reads them with the stricter, one-pass
//! [`StrictEnvelope::parse`].

mod catalog;
mod strict;

pub use catalog::*;
pub use strict::{MAX_DEPTH, StrictEnvelope, StrictError, TIME_LEN, check_time};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The role an actor held when acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The service itself (workers, schedulers, recovery).
    System,
    /// A person running the server; holds no role inside an instance.
    Operator,
    /// A domain administrator (acts by signed command).
    Admin,
    /// A key owner supplying a master-key part.
    KeyOwner,
    /// An API credential holder with the `manager` role: every key action,
    /// including deletion, restore, purge, policies and key rings.
    Manager,
    /// An API credential holder with the `writer` role: creates, rotates and
    /// uses keys, reads standard-key payloads, manages aliases and import
    /// tokens.
    Writer,
    /// An API credential holder with the `reader` role: lists keys and reads
    /// their metadata.
    Reader,
    /// An API credential holder with the `auditor` role: the ledger
    /// endpoints only (checkpoints, records, proofs, export).
    Auditor,
    /// Not authenticated (only ever seen in denial events).
    Anonymous,
}

/// How the actor was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Internal action of the service.
    Internal,
    /// Local command line on the server host (operator actions).
    LocalCli,
    /// API bearer credential.
    Bearer,
    /// Threshold of administrator signatures over a command.
    AdminSignatures,
    /// The first administrator added in imprint mode, without signatures.
    Imprint,
    /// Key-owner credential during the master-key ceremony.
    KeyOwnerCredential,
    /// No authentication at all (the anonymous role, in denial events).
    None,
}

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Stable principal id (credential id, admin key id, `system`, ...).
    pub principal: String,
    /// The role the principal acted in.
    pub role: Role,
    /// How the principal proved who they are.
    pub auth: AuthMethod,
}

impl Actor {
    /// The service acting on its own (worker, scheduler, recovery).
    pub fn system() -> Self {
        Actor {
            principal: "system".into(),
            role: Role::System,
            auth: AuthMethod::Internal,
        }
    }

    /// An operator acting through the local command line.
    pub fn operator(name: &str) -> Self {
        Actor {
            principal: name.into(),
            role: Role::Operator,
            auth: AuthMethod::LocalCli,
        }
    }
}

/// A payload type of the catalogue.
pub trait EventPayload: Serialize + for<'de> Deserialize<'de> + schemars::JsonSchema {
    /// Past-tense dotted name, e.g. `key.created`.
    const TYPE: &'static str;
    /// Payload schema version; bumped on incompatible change (upcast on read).
    const VERSION: u32;
}

/// Why an event could not be prepared.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// The payload could not be turned into JSON.
    #[error("event payload could not be serialised: {0}")]
    Serialise(String),
    /// The payload would exceed [`MAX_EVENT_BYTES`](crate::record::MAX_EVENT_BYTES).
    #[error("event is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An envelope field breaks its format.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A raw payload does not match its event type.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// An event before the writer sequences, links and signs it.
#[derive(Debug, Clone)]
pub struct EventDraft {
    /// The event type (`key.created`, ...).
    pub event_type: &'static str,
    /// The payload's schema version.
    pub type_version: u32,
    /// Who acted.
    pub actor: Actor,
    /// Ties the event to the request that caused it.
    pub correlation_id: String,
    /// The payload JSON, serialised once.
    pub payload: Box<RawValue>,
}

/// Largest accepted correlation id.
pub const MAX_CORRELATION_ID: usize = 128;

impl EventDraft {
    /// Serialises `payload` once and checks the draft's fields.
    pub fn new<P: EventPayload>(
        actor: Actor,
        correlation_id: impl Into<String>,
        payload: &P,
    ) -> Result<Self, EventError> {
        let correlation_id = correlation_id.into();
        check_token("correlation_id", &correlation_id, MAX_CORRELATION_ID)?;
        check_token("actor.principal", &actor.principal, 256)?;
        let json =
            serde_json::to_string(payload).map_err(|e| EventError::Serialise(e.to_string()))?;
        if json.len() > crate::record::MAX_EVENT_BYTES {
            return Err(EventError::TooLarge {
                size: json.len(),
                max: crate::record::MAX_EVENT_BYTES,
            });
        }
        let payload =
            RawValue::from_string(json).map_err(|e| EventError::Serialise(e.to_string()))?;
        Ok(EventDraft {
            event_type: P::TYPE,
            type_version: P::VERSION,
            actor,
            correlation_id,
            payload,
        })
    }
}

impl EventDraft {
    /// A draft from an untrusted, already serialised payload (imports,
    /// replays, tools): the JSON must be one object that is a valid payload
    /// of a catalogued type. It is compacted once here; the writer then
    /// embeds those bytes unchanged.
    pub fn from_json(
        event_type: &str,
        type_version: u32,
        actor: Actor,
        correlation_id: impl Into<String>,
        payload_json: &str,
    ) -> Result<Self, EventError> {
        let correlation_id = correlation_id.into();
        check_token("correlation_id", &correlation_id, MAX_CORRELATION_ID)?;
        check_token("actor.principal", &actor.principal, 256)?;
        if payload_json.len() > crate::record::MAX_EVENT_BYTES {
            return Err(EventError::TooLarge {
                size: payload_json.len(),
                max: crate::record::MAX_EVENT_BYTES,
            });
        }
        let event_type = check_payload(event_type, type_version, payload_json)?;
        // Compact form: the stored bytes carry no insignificant whitespace.
        let value: serde_json::Value = serde_json::from_str(payload_json)
            .map_err(|e| EventError::Payload(PayloadError::Invalid(e.to_string())))?;
        let compact =
            serde_json::to_string(&value).map_err(|e| EventError::Serialise(e.to_string()))?;
        let payload =
            RawValue::from_string(compact).map_err(|e| EventError::Serialise(e.to_string()))?;
        Ok(EventDraft {
            event_type,
            type_version,
            actor,
            correlation_id,
            payload,
        })
    }
}

/// Checks a short identifier: non-empty, bounded, printable ASCII without
/// quotes or backslashes (so it is safe in logs and SIEM formats).
pub fn check_token(field: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(EventError::Invalid {
            field,
            reason: "must not be empty",
        });
    }
    if value.len() > max {
        return Err(EventError::Invalid {
            field,
            reason: "too long",
        });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(EventError::Invalid {
            field,
            reason: "must be printable ASCII without spaces, quotes or backslashes",
        });
    }
    Ok(())
}

/// The envelope as the writer serialises it. Field order here is the byte
/// order of every stored event.
#[derive(Serialize)]
pub struct EnvelopeOut<'a> {
    /// The instance.
    pub instance: &'a str,
    /// The gap-free per-instance sequence number.
    pub seq: u64,
    /// RFC 3339 time the writer assigned.
    pub time: &'a str,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: &'a str,
    /// The payload's schema version.
    pub type_version: u32,
    /// Who acted.
    pub actor: &'a Actor,
    /// Ties the event to the request that caused it.
    pub correlation_id: &'a str,
    /// The payload JSON.
    pub payload: &'a RawValue,
    /// C2SP key id (8 lower-case hex) of the signing ledger key.
    pub ledger_key: &'a str,
    /// Chain link of the previous record, 64 lower-case hex.
    pub prev: &'a str,
}

/// A parsed view of stored event bytes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<'a> {
    /// The instance.
    pub instance: String,
    /// The per-instance sequence number.
    pub seq: u64,
    /// RFC 3339 time the writer assigned.
    pub time: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version.
    pub type_version: u32,
    /// Who acted.
    pub actor: Actor,
    /// Ties the event to the request that caused it.
    pub correlation_id: String,
    /// The payload JSON, unparsed.
    #[serde(borrow)]
    pub payload: &'a RawValue,
    /// C2SP key id (8 lower-case hex) of the ledger key that signed the record.
    pub ledger_key: String,
    /// Chain link of the previous record, 64 lower-case hex.
    pub prev: String,
}

impl<'a> Envelope<'a> {
    /// Parses event bytes strictly: one JSON object, no unknown or duplicate
    /// fields, nothing after it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Deserialises the payload as `P` when the type and version match.
    pub fn payload_as<P: EventPayload>(&self) -> Option<Result<P, serde_json::Error>> {
        if self.event_type == P::TYPE && self.type_version == P::VERSION {
            Some(serde_json::from_str(self.payload.get()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_refuses_bad_correlation_ids_and_huge_payloads() {
        let payload = KeyEnabled { key_id: "k".into() };
        assert!(EventDraft::new(Actor::system(), "ok-1", &payload).is_ok());
        for bad in ["", "has space", "quote\"", &"x".repeat(200)] {
            assert!(matches!(
                EventDraft::new(Actor::system(), bad, &payload),
                Err(EventError::Invalid { .. })
            ));
        }
        let huge = KeyEnabled {
            key_id: "k".repeat(crate::record::MAX_EVENT_BYTES + 1),
        };
        assert!(matches!(
            EventDraft::new(Actor::system(), "c", &huge),
            Err(EventError::TooLarge { .. })
        ));
    }

    #[test]
    fn envelope_parse_is_strict() {
        let ok = br#"{"instance":"i","seq":0,"time":"t","type":"key.enabled","type_version":1,"actor":{"principal":"system","role":"system","auth":"internal"},"correlation_id":"c","payload":{"key_id":"k"},"ledger_key":"00000000","prev":"00"}"#;
        let env = Envelope::parse(ok).expect("parse");
        assert_eq!(
            env.payload_as::<KeyEnabled>()
                .expect("type")
                .expect("payload")
                .key_id,
            "k"
        );
        let dup = br#"{"instance":"i","instance":"j","seq":0,"time":"t","type":"key.enabled","type_version":1,"actor":{"principal":"system","role":"system","auth":"internal"},"correlation_id":"c","payload":{},"ledger_key":"0","prev":"00"}"#;
        assert!(Envelope::parse(dup).is_err());
        let mut trailing = ok.to_vec();
        trailing.extend_from_slice(b" x");
        assert!(Envelope::parse(&trailing).is_err());
        let unknown = br#"{"extra":1,"instance":"i","seq":0,"time":"t","type":"key.enabled","type_version":1,"actor":{"principal":"system","role":"system","auth":"internal"},"correlation_id":"c","payload":{},"ledger_key":"0","prev":"00"}"#;
        assert!(Envelope::parse(unknown).is_err());
    }
}
