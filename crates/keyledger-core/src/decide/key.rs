//! The key aggregate: what a key command may record, decided against the
//! instance's projections.
//!
//! A [`KeyCommand`] is "record this key change": the change is the event
//! payload the command produces ([`KeyChange`]), built by the caller with
//! what lies outside a decision (new ids, the HSM's key check values, the
//! time). [`decide`] checks every rule of the change against the state
//! before it, and returns the change's one event. So a key event is
//! exactly its command, and the verifier rebuilds the command from the
//! event ([`KeyCommand::from_envelope`]) and asks `decide` again.
//!
//! The rules, in the order they are checked (the first that fails is the
//! refusal): the actor's API credential is in force with its role
//! ([`super::check_credential`]); the key exists (or, for a creation, does
//! not, in an existing key ring, as the instance policy
//! `keyCreateImportAccess` allows); its type allows the action (root-key-only
//! actions, key use included); the state table and time windows at
//! the command's time; the change's own rules (dual-authorisation delete
//! and its irreversibility, key-material size, an imported key rotates to
//! imported material, policy shapes, dates owed); and last the role table
//! for the actor's credential role.

use chrono::{DateTime, Utc};

use super::Refusal;
use crate::event::{
    Actor, Envelope, EventDraft, EventPayload, KeyActivated, KeyAliasCreated, KeyAliasDeleted,
    KeyCreated, KeyDeletionAuthorized, KeyDeletionUnauthorized, KeyDestroyed, KeyDisabled,
    KeyEnabled, KeyExpired, KeyMoved, KeyPayloadRead, KeyPolicyUpdated, KeyPurged, KeyRestored,
    KeyRewrapped, KeyRotated, KeyUnwrapped, KeyWrapped, Role,
};
use crate::keys::payload;
use crate::keys::projection::{DEFAULT_KEY_RING, KeyRecord};
use crate::keys::state::{self, KeyAction, KeyState};
use crate::projections::Projections;
use crate::roles::{self, Need};

/// Key Protect allows at most five aliases per key.
pub const MAX_ALIASES: usize = 5;

/// One change to one key: the payload of the event it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// Create a key (its first version's material made by the HSM).
    Create(KeyCreated),
    /// Activate a pre-activation key whose activation date has come.
    Activate(KeyActivated),
    /// Add a version (material made by the HSM or supplied by the caller).
    Rotate(KeyRotated),
    /// Enable a suspended key.
    Enable(KeyEnabled),
    /// Suspend a key.
    Disable(KeyDisabled),
    /// Deactivate a key past its expiration date.
    Expire(KeyExpired),
    /// First authorisation of a dual-authorisation delete.
    AuthorizeDeletion(KeyDeletionAuthorized),
    /// Withdraw that authorisation.
    UnauthorizeDeletion(KeyDeletionUnauthorized),
    /// Delete (destroy) a key.
    Destroy(KeyDestroyed),
    /// Restore a destroyed key.
    Restore(KeyRestored),
    /// Purge a destroyed key (shred its material).
    Purge(KeyPurged),
    /// Move a key to another key ring.
    Move(KeyMoved),
    /// Give a key an alias.
    CreateAlias(KeyAliasCreated),
    /// Take an alias from a key.
    DeleteAlias(KeyAliasDeleted),
    /// Set a key policy (rotation, dual-authorisation delete).
    SetPolicy(KeyPolicyUpdated),
    /// Return a standard key's payload.
    ReadPayload(KeyPayloadRead),
    /// Wrap a data key.
    Wrap(KeyWrapped),
    /// Unwrap a ciphertext.
    Unwrap(KeyUnwrapped),
    /// Rewrap a ciphertext to the key's current version.
    Rewrap(KeyRewrapped),
}

/// A key command: who asks, when, under which correlation id, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCommand {
    /// Who asks (their credential role is checked against the role table).
    pub actor: Actor,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// The time the command is decided at (the service's clock, or the
    /// logged event's time when replaying).
    pub at: DateTime<Utc>,
    /// What it asks for.
    pub change: KeyChange,
}

macro_rules! changes {
    ($($variant:ident($payload:ty) = $action:expr, $need:expr, $name:literal;)*) => {
        impl KeyChange {
            /// The key the change is about.
            pub fn key_id(&self) -> &str {
                match self { $(KeyChange::$variant(p) => &p.key_id,)* }
            }

            /// The state-table action of the change (a creation has no key
            /// to act on yet: `ReadMetadata`, which every state allows).
            pub fn action(&self) -> KeyAction {
                match self { $(KeyChange::$variant(_) => $action,)* }
            }

            /// What the change needs of a credential role.
            pub fn need(&self) -> Need {
                match self { $(KeyChange::$variant(_) => $need,)* }
            }

            /// The command's name (Key Protect's action name).
            pub fn name(&self) -> &'static str {
                match self { $(KeyChange::$variant(_) => $name,)* }
            }

            fn draft(&self, actor: &Actor, correlation_id: &str) -> Result<EventDraft, Refusal> {
                let draft = match self {
                    $(KeyChange::$variant(p) => EventDraft::new(actor.clone(), correlation_id, p),)*
                };
                draft.map_err(|e| Refusal::Invalid(e.to_string()))
            }

            /// The change a stored event records, if it is a key change.
            /// `Err` when the event has a key change's type but its payload
            /// does not read.
            pub fn from_envelope(envelope: &Envelope<'_>) -> Option<Result<KeyChange, String>> {
                $(
                    if let Some(p) = envelope.payload_as::<$payload>() {
                        return Some(p.map(KeyChange::$variant).map_err(|e| {
                            format!("payload is not a valid {}: {e}", <$payload>::TYPE)
                        }));
                    }
                )*
                None
            }
        }
    };
}

changes! {
    Create(KeyCreated) = KeyAction::ReadMetadata, Need::Writer, "create";
    Activate(KeyActivated) = KeyAction::Activate, Need::Reader, "activate";
    Rotate(KeyRotated) = KeyAction::Rotate, Need::Writer, "rotate";
    Enable(KeyEnabled) = KeyAction::Enable, Need::Manager, "enable";
    Disable(KeyDisabled) = KeyAction::Disable, Need::Manager, "disable";
    Expire(KeyExpired) = KeyAction::Expire, Need::Reader, "expire";
    AuthorizeDeletion(KeyDeletionAuthorized) = KeyAction::SetKeyForDeletion, Need::Manager, "setKeyForDeletion";
    UnauthorizeDeletion(KeyDeletionUnauthorized) = KeyAction::UnsetKeyForDeletion, Need::Manager, "unsetKeyForDeletion";
    Destroy(KeyDestroyed) = KeyAction::Delete, Need::Manager, "delete";
    Restore(KeyRestored) = KeyAction::Restore, Need::Manager, "restore";
    Purge(KeyPurged) = KeyAction::Purge, Need::Manager, "purge";
    Move(KeyMoved) = KeyAction::Patch, Need::Manager, "patch";
    CreateAlias(KeyAliasCreated) = KeyAction::CreateAlias, Need::Writer, "createAlias";
    DeleteAlias(KeyAliasDeleted) = KeyAction::DeleteAlias, Need::Writer, "deleteAlias";
    SetPolicy(KeyPolicyUpdated) = KeyAction::SetPolicy, Need::Manager, "setPolicy";
    ReadPayload(KeyPayloadRead) = KeyAction::GetPayload, Need::Writer, "read";
    Wrap(KeyWrapped) = KeyAction::Wrap, Need::Writer, "wrap";
    Unwrap(KeyUnwrapped) = KeyAction::Unwrap, Need::Writer, "unwrap";
    Rewrap(KeyRewrapped) = KeyAction::Rewrap, Need::Writer, "rewrap";
}

impl KeyCommand {
    /// The command a stored key event records: its actor, correlation id,
    /// time and payload. `None` for events that are not key changes;
    /// `Some(Err)` for one that does not read (bad time or payload).
    pub fn from_envelope(envelope: &Envelope<'_>) -> Option<Result<KeyCommand, String>> {
        let change = KeyChange::from_envelope(envelope)?;
        Some(change.and_then(|change| {
            let at = super::recorded_at(envelope)?;
            Ok(KeyCommand {
                actor: envelope.actor.clone(),
                correlation_id: envelope.correlation_id.clone(),
                at,
                change,
            })
        }))
    }
}

/// Decides a key command against the state before it: the command's one
/// event, or why it is refused.
pub fn decide(state: &Projections, command: &KeyCommand) -> Result<Vec<EventDraft>, Refusal> {
    check(state, command)?;
    Ok(vec![
        command
            .change
            .draft(&command.actor, &command.correlation_id)?,
    ])
}

/// The rules of [`decide`] without building the event.
pub fn check(state: &Projections, command: &KeyCommand) -> Result<(), Refusal> {
    super::check_credential(state, &command.actor)?;
    let at = command.at;
    let keys = &state.keys;
    match &command.change {
        KeyChange::Create(p) => {
            if keys.keys.contains_key(&p.key_id) || keys.purged.contains(&p.key_id) {
                return Err(Refusal::Conflict(format!("key {:?}", p.key_id)));
            }
            if let Some(alias) = p.aliases.iter().find(|a| keys.aliases.contains_key(*a)) {
                return Err(Refusal::Conflict(format!("alias {alias:?}")));
            }
            if p.import_token_id.is_some() && p.extractable {
                return Err(Refusal::TokenImportNeedsRootKey);
            }
            if !keys.key_ring_exists(&p.key_ring_id) {
                return Err(Refusal::KeyRingUnknown(
                    p.key_ring_id.chars().take(128).collect(),
                ));
            }
            check_create_policy(state, p)?;
            master_key_active(state)?;
            if p.bit_length % 8 != 0 {
                return Err(Refusal::Invalid(format!(
                    "bit_length {} is not a whole number of bytes",
                    p.bit_length
                )));
            }
            payload::check(p.extractable, usize::from(p.bit_length / 8))?;
        }
        KeyChange::Rotate(p) => {
            let key = key_action(state, command)?;
            master_key_active(state)?;
            if p.imported != key.imported {
                return Err(Refusal::Invalid(format!(
                    "a {} key rotates to {} material",
                    if key.imported {
                        "imported"
                    } else {
                        "generated"
                    },
                    if key.imported {
                        "imported"
                    } else {
                        "generated"
                    },
                )));
            }
        }
        KeyChange::Expire(p) => {
            let key = key_action(state, command)?;
            if key.expiration_date.is_none_or(|d| d > at) {
                return Err(Refusal::NotDue(p.key_id.clone()));
            }
        }
        KeyChange::AuthorizeDeletion(_) | KeyChange::UnauthorizeDeletion(_) => {
            let key = key_action(state, command)?;
            state::check_set_for_deletion(&key.dual_auth())?;
        }
        KeyChange::Destroy(p) => {
            let key = key_action(state, command)?;
            // A delete on the strength of an approval request: the approval
            // rules vouch for the second principal, not the key's own
            // set-for-deletion authorisation.
            if p.approval_request_id.is_none() {
                state::check_dual_auth_delete(&key.dual_auth(), &command.actor.principal, at)?;
            }
        }
        KeyChange::SetPolicy(p) => {
            let key = key_action(state, command)?;
            check_policy_shape(p)?;
            if p.policy_type == "dualAuthDelete" {
                state::check_dual_auth_policy(key.dual_auth_delete.enabled, p.enabled)?;
            }
        }
        KeyChange::CreateAlias(p) => {
            let key = key_action(state, command)?;
            if keys.aliases.contains_key(&p.alias) {
                return Err(Refusal::AliasInUse(p.alias.clone()));
            }
            if key.aliases.len() >= MAX_ALIASES {
                return Err(Refusal::AliasQuota(MAX_ALIASES));
            }
        }
        KeyChange::DeleteAlias(p) => {
            let key = key_action(state, command)?;
            if !key.aliases.contains(&p.alias) {
                return Err(Refusal::AliasNotFound);
            }
        }
        KeyChange::Purge(p) => {
            let key = key_action(state, command)?;
            // A dual-authorisation key is purged only on the strength of
            // an approval request (`key.purge`, approved by a second
            // principal): the approval rules vouch for that.
            if p.approval_request_id.is_none() && key.dual_auth().enabled {
                return Err(Refusal::State(state::StateError::AuthorizationsNotMet));
            }
        }
        KeyChange::Move(p)
            if keys
                .get(&p.key_id)
                .is_some_and(|k| k.state == KeyState::Destroyed) =>
        {
            // The forced move of a key-ring deletion: a destroyed key goes
            // to the default key ring (and nowhere else).
            let key = keys
                .get(&p.key_id)
                .ok_or_else(|| Refusal::UnknownKey(p.key_id.clone()))?;
            let forced = p.to_key_ring_id == DEFAULT_KEY_RING
                && p.from_key_ring_id == key.key_ring_id
                && key.key_ring_id != DEFAULT_KEY_RING;
            if !forced {
                let action = KeyAction::Patch;
                state::check_at(key.state, action, &key.timeline(), at)?;
            }
        }
        KeyChange::Move(p) => {
            let key = key_action(state, command)?;
            if !keys.key_ring_exists(&p.to_key_ring_id) {
                return Err(Refusal::KeyRingUnknown(
                    p.to_key_ring_id.chars().take(128).collect(),
                ));
            }
            if p.from_key_ring_id != key.key_ring_id || p.to_key_ring_id == key.key_ring_id {
                return Err(Refusal::Invalid(format!(
                    "the key is in key ring {:?}: it moves from there to another",
                    key.key_ring_id
                )));
            }
        }
        // The state table holds activation back until the activation date.
        KeyChange::Activate(_)
        | KeyChange::Enable(_)
        | KeyChange::Disable(_)
        | KeyChange::Restore(_) => {
            key_action(state, command)?;
        }
        // Key use is decided like every key command (the service decides
        // it under the shared side of its command lock, so no state change
        // can come between the decision and the event): the key exists,
        // its type and state allow the use. A root key's payload never
        // leaves.
        KeyChange::ReadPayload(p) => {
            let key = key_action(state, command)?;
            if !key.extractable {
                return Err(Refusal::NotExtractable(p.key_id.clone()));
            }
        }
        KeyChange::Wrap(_) | KeyChange::Unwrap(_) | KeyChange::Rewrap(_) => {
            key_action(state, command)?;
        }
    }
    check_role(state, &command.actor, &command.change)
}

/// The key exists, its type allows the action and the state machine allows
/// it at the command's time.
fn key_action<'s>(state: &'s Projections, command: &KeyCommand) -> Result<&'s KeyRecord, Refusal> {
    let key_id = command.change.key_id();
    let action = command.change.action();
    let key = state
        .keys
        .get(key_id)
        .ok_or_else(|| Refusal::UnknownKey(key_id.chars().take(128).collect()))?;
    state::check_key_type(key.extractable, action)?;
    state::check_at(key.state, action, &key.timeline(), command.at)?;
    Ok(key)
}

/// The instance policy `keyCreateImportAccess`: which kinds of key may be
/// created or imported, and whether imports need an import token.
fn check_create_policy(state: &Projections, p: &KeyCreated) -> Result<(), Refusal> {
    let gov = &state.governance;
    if !gov.may_create_key(p.extractable, p.imported) {
        let kind = match (p.imported, p.extractable) {
            (false, false) => "creating root keys",
            (false, true) => "creating standard keys",
            (true, false) => "importing root keys",
            (true, true) => "importing standard keys",
        };
        return Err(Refusal::PolicyDenied(format!(
            "the instance policy keyCreateImportAccess does not allow {kind}"
        )));
    }
    if p.imported && p.import_token_id.is_none() && gov.import_token_enforced() {
        return Err(Refusal::PolicyDenied(
            "the instance policy keyCreateImportAccess requires an import token (enforce_token)"
                .into(),
        ));
    }
    Ok(())
}

fn master_key_active(state: &Projections) -> Result<(), Refusal> {
    if state.master.current.is_some() {
        Ok(())
    } else {
        Err(Refusal::NoMasterKey)
    }
}

/// `dualAuthDelete` (no interval), or `rotation` (enabled with an interval
/// of 1-12 months, or disabled).
fn check_policy_shape(p: &KeyPolicyUpdated) -> Result<(), Refusal> {
    match (p.policy_type.as_str(), p.interval_month) {
        ("dualAuthDelete", None) => Ok(()),
        ("rotation", Some(1..=12)) | ("rotation", None)
            if !p.enabled || p.interval_month.is_some() =>
        {
            Ok(())
        }
        _ => Err(Refusal::Invalid(
            "policy must be dualAuthDelete, or rotation with interval_month 1-12".into(),
        )),
    }
}

/// The role table, for actors that hold a credential role (managers,
/// writers, readers, auditors) or none at all (anonymous). The service
/// itself, operators at the command line, administrators and key owners
/// act outside the role table.
///
/// One exception: the principal that created a key may set its policies
/// with the role that created it, as a creation with policy overrides
/// (`POST /api/v2/keys_with_policy_overrides`, a writer's request) does.
fn check_role(state: &Projections, actor: &Actor, change: &KeyChange) -> Result<(), Refusal> {
    let role = actor.role;
    let bound = matches!(
        role,
        Role::Manager | Role::Writer | Role::Reader | Role::Auditor | Role::Anonymous
    );
    let creator = |p: &KeyPolicyUpdated| {
        state
            .keys
            .get(&p.key_id)
            .is_some_and(|k| k.created_by == actor.principal)
    };
    let need = match change {
        KeyChange::SetPolicy(p) if creator(p) => Need::Writer,
        other => other.need(),
    };
    if bound && !roles::allows(role, need) {
        return Err(Refusal::RoleNotAllowed {
            role,
            command: change.name(),
            need,
        });
    }
    Ok(())
}

/// The role table for a command other than a key change (an approval
/// request made by a key command): actors with a credential role (or
/// none) need `need`; the service, operators, administrators and key
/// owners act outside the table.
pub(crate) fn check_role_for(
    actor: &Actor,
    need: Need,
    command: &'static str,
) -> Result<(), Refusal> {
    let role = actor.role;
    let bound = matches!(
        role,
        Role::Manager | Role::Writer | Role::Reader | Role::Auditor | Role::Anonymous
    );
    if bound && !roles::allows(role, need) {
        return Err(Refusal::RoleNotAllowed {
            role,
            command,
            need,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
