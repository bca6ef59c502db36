//! The instance-governance aggregate: what a signed administrator command
//! records, decided against the instance's projections.
//!
//! The rule is [`authorize`] (instance, expiry, nonce, signatures,
//! thresholds, and the command's effect on the state before it); the
//! events are [`recorded`]: each command kind records exactly one event,
//! made from the command document and its reference alone. The events of
//! the master-key ceremony steps and of zeroization carry what the HSM and
//! the key-material store did (verification patterns, keys shredded): for
//! those kinds [`decide`] authorises and records nothing itself; the
//! service's ceremony and zeroize paths make their events.
//!
//! The verifier rebuilds the command from a logged event's command
//! reference ([`SignedCommand::from_ref`]), checks that the event is the
//! one [`recorded`] makes of it, then asks [`decide`] at the event's time.

use base64::Engine;
use chrono::{DateTime, Utc};

use super::Refusal;
use crate::event::{
    Actor, AdminAdded, AdminRemoved, AdminThresholdsSet, AuthMethod, CredentialIssued,
    CredentialRevoked, EventDraft, EventError, EventPayload, ExportSinksSet, InstancePolicyUpdated,
    KeyOwnerRegistered, KeyOwnerRemoved, MasterKeyLoadApproved, Role, SignedCommandRef,
};
use crate::governance::command::decode_public_key;
use crate::governance::{AdminCommand, Denial, SignedCommand, View, admin_id, authorize};
use crate::projections::Projections;

/// A signed administrator command for an instance, decided at a time.
#[derive(Debug, Clone, Copy)]
pub struct GovernanceCommand<'a> {
    /// The instance the command must name.
    pub instance: &'a str,
    /// The command document and its signatures.
    pub signed: &'a SignedCommand,
    /// Correlation id of the request.
    pub correlation_id: &'a str,
    /// The time the command is decided at (the service's clock, or the
    /// logged event's time when replaying).
    pub at: DateTime<Utc>,
}

/// The one event a command kind records, before it has an actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceEvent {
    /// `admin.added`.
    AdminAdded(AdminAdded),
    /// `admin.removed`.
    AdminRemoved(AdminRemoved),
    /// `admin.thresholds_set`.
    ThresholdsSet(AdminThresholdsSet),
    /// `credential.issued`.
    CredentialIssued(CredentialIssued),
    /// `credential.revoked`.
    CredentialRevoked(CredentialRevoked),
    /// `instance.policy_updated`.
    InstancePolicyUpdated(InstancePolicyUpdated),
    /// `export.sinks_set`.
    SinksSet(ExportSinksSet),
    /// `key_owner.registered`.
    KeyOwnerRegistered(KeyOwnerRegistered),
    /// `key_owner.removed`.
    KeyOwnerRemoved(KeyOwnerRemoved),
    /// `master_key.load_approved`.
    LoadApproved(MasterKeyLoadApproved),
}

impl GovernanceEvent {
    /// The event's type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            GovernanceEvent::AdminAdded(_) => AdminAdded::TYPE,
            GovernanceEvent::AdminRemoved(_) => AdminRemoved::TYPE,
            GovernanceEvent::ThresholdsSet(_) => AdminThresholdsSet::TYPE,
            GovernanceEvent::CredentialIssued(_) => CredentialIssued::TYPE,
            GovernanceEvent::CredentialRevoked(_) => CredentialRevoked::TYPE,
            GovernanceEvent::InstancePolicyUpdated(_) => InstancePolicyUpdated::TYPE,
            GovernanceEvent::SinksSet(_) => ExportSinksSet::TYPE,
            GovernanceEvent::KeyOwnerRegistered(_) => KeyOwnerRegistered::TYPE,
            GovernanceEvent::KeyOwnerRemoved(_) => KeyOwnerRemoved::TYPE,
            GovernanceEvent::LoadApproved(_) => MasterKeyLoadApproved::TYPE,
        }
    }

    /// The event as a draft by `actor`.
    pub fn draft(&self, actor: &Actor, correlation_id: &str) -> Result<EventDraft, EventError> {
        let a = actor.clone();
        match self {
            GovernanceEvent::AdminAdded(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::AdminRemoved(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::ThresholdsSet(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::CredentialIssued(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::CredentialRevoked(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::InstancePolicyUpdated(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::SinksSet(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::KeyOwnerRegistered(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::KeyOwnerRemoved(p) => EventDraft::new(a, correlation_id, p),
            GovernanceEvent::LoadApproved(p) => EventDraft::new(a, correlation_id, p),
        }
    }
}

/// The actor of a command's events: the administrators whose signatures
/// verified.
pub fn signers_actor(signers: &[String]) -> Actor {
    let mut principal = signers.join("+");
    principal.truncate(256);
    Actor {
        principal,
        role: Role::Admin,
        auth: AuthMethod::AdminSignatures,
    }
}

/// The actor the events of `signed` are recorded under when it is
/// authorised at `at` in `view`: the administrators whose signatures
/// verified ([`signers_actor`]). The service records every event an
/// authorised command causes under this actor; `verify --policy` flags an
/// event that names another (`actor_not_signer`).
pub fn command_actor(
    view: View<'_>,
    signed: &SignedCommand,
    at: DateTime<Utc>,
) -> Result<Actor, Refusal> {
    let authorized = authorize(view, signed, at)?;
    Ok(signers_actor(&authorized.signers))
}

fn b64_key(public_key: &str) -> Result<String, Denial> {
    let key = decode_public_key(public_key)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key.as_bytes()))
}

/// The event `command` records under its reference `signed`; none for the
/// ceremony steps and zeroization, whose events carry what the HSM did.
/// `Err` for a public key that does not decode.
pub fn recorded(
    command: &AdminCommand,
    signed: SignedCommandRef,
) -> Result<Option<GovernanceEvent>, Denial> {
    Ok(Some(match command.clone() {
        AdminCommand::AddAdmin { name, public_key } => {
            let key = decode_public_key(&public_key)?;
            GovernanceEvent::AdminAdded(AdminAdded {
                admin_id: admin_id(&key),
                name,
                public_key: b64_key(&public_key)?,
                command: Some(signed),
            })
        }
        AdminCommand::RemoveAdmin { admin_id } => GovernanceEvent::AdminRemoved(AdminRemoved {
            admin_id,
            command: signed,
        }),
        AdminCommand::SetThresholds {
            signature_threshold,
            revocation_threshold,
        } => GovernanceEvent::ThresholdsSet(AdminThresholdsSet {
            signature_threshold,
            revocation_threshold,
            command: signed,
        }),
        AdminCommand::RegisterKeyOwner {
            owner_id,
            name,
            public_key,
        } => GovernanceEvent::KeyOwnerRegistered(KeyOwnerRegistered {
            owner_id,
            name,
            public_key: b64_key(&public_key)?,
            command: Some(signed),
        }),
        AdminCommand::RemoveKeyOwner { owner_id } => {
            GovernanceEvent::KeyOwnerRemoved(KeyOwnerRemoved {
                owner_id,
                command: signed,
            })
        }
        AdminCommand::ApproveMasterKeyLoad { generation } => {
            GovernanceEvent::LoadApproved(MasterKeyLoadApproved {
                generation,
                command: signed,
            })
        }
        AdminCommand::IssueCredential {
            credential_id,
            role,
            token_digest,
        } => GovernanceEvent::CredentialIssued(CredentialIssued {
            credential_id,
            role,
            token_digest,
            command: Some(signed),
        }),
        AdminCommand::RevokeCredential { credential_id } => {
            GovernanceEvent::CredentialRevoked(CredentialRevoked {
                credential_id,
                command: Some(signed),
            })
        }
        AdminCommand::SetInstancePolicy {
            policy_type,
            enabled,
            attributes,
        } => GovernanceEvent::InstancePolicyUpdated(InstancePolicyUpdated {
            policy_type,
            enabled,
            attributes,
            command: Some(signed),
        }),
        AdminCommand::SetSinks { sinks } => GovernanceEvent::SinksSet(ExportSinksSet {
            sinks,
            command: signed,
        }),
        AdminCommand::CommitMasterKey { .. }
        | AdminCommand::ActivateMasterKey { .. }
        | AdminCommand::Zeroize {} => return Ok(None),
    }))
}

/// Decides a signed administrator command against the state before it:
/// the event it records, by the administrators whose signatures verified
/// (none for the ceremony steps and zeroization: see the module docs), or
/// why it is refused.
pub fn decide(
    state: &Projections,
    command: &GovernanceCommand<'_>,
) -> Result<Vec<EventDraft>, Refusal> {
    let view = View {
        instance: command.instance,
        governance: &state.governance,
        master: &state.master,
    };
    let authorized = authorize(view, command.signed, command.at)?;
    let actor = signers_actor(&authorized.signers);
    let event = recorded(&authorized.document.command, command.signed.to_ref())?;
    event
        .map(|e| e.draft(&actor, command.correlation_id))
        .transpose()
        .map(|d| d.into_iter().collect())
        .map_err(|e| Refusal::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests;
