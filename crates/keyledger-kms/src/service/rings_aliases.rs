//! Key rings, aliases and moving keys between key rings (Key Protect's
//! `POST|DELETE /key_rings/{id}`, `POST|DELETE /keys/{id}/aliases/{alias}`
//! and `PATCH /keys/{id}`). Each command validates against the projections
//! under the command lock, then appends its event (`key_ring.created`,
//! `key_ring.deleted`, `key.alias_created`, `key.alias_deleted`,
//! `key.moved`); refusals append nothing but a key refusal event where a
//! key's state forbids the action.

use super::{KeyError, KeyService};
use keyledger_core::decide::key::KeyChange;
use keyledger_core::decide::key_ring::KeyRingChange;
use keyledger_core::event::{
    Actor, KeyAliasCreated, KeyAliasDeleted, KeyMoved, KeyRingCreated, KeyRingDeleted,
};
use keyledger_core::keys::projection::{DEFAULT_KEY_RING, KeyRecord};
use keyledger_core::keys::state::{KeyAction, KeyState};
use keyledger_core::reason::Reason;
use keyledger_ledger::writer::Receipt;

/// Key Protect allows at most five aliases per key.
pub use keyledger_core::decide::key::MAX_ALIASES;

fn refused(reason: Reason, message: impl Into<String>) -> KeyError {
    KeyError::Refused {
        reason,
        message: message.into(),
    }
}

/// A key ring id: 2-100 characters of letters, digits and `-`.
pub fn check_key_ring_id(id: &str) -> Result<(), KeyError> {
    let ok = (2..=100).contains(&id.chars().count())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(refused(
            Reason::InvalidRequest,
            "a key ring id must be 2-100 characters of letters, digits and '-'",
        ))
    }
}

/// An alias: 2-90 characters of letters, digits, `-` and `_`, not shaped
/// like a key id (a UUID), and not a word the API uses after `/keys/`.
pub fn check_alias(alias: &str) -> Result<(), KeyError> {
    let ok = (2..=90).contains(&alias.chars().count())
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(refused(
            Reason::InvalidRequest,
            "an alias must be 2-90 characters of letters, digits, '-' and '_'",
        ));
    }
    if uuid::Uuid::parse_str(alias).is_ok() || alias == "registrations" {
        return Err(refused(
            Reason::InvalidRequest,
            "an alias must not look like a key id or be a reserved word",
        ));
    }
    Ok(())
}

/// The aliases a key is created with (`POST /keys`,
/// `POST /keys_with_policy_overrides`): the rules of `POST
/// /keys/{id}/aliases/{alias}`, so creation accepts no alias that endpoint
/// would refuse. At most [`MAX_ALIASES`] (400 `KEY_ALIAS_QUOTA_ERR`), each
/// one [`check_alias`] accepts (400 `BAD_BODY_ERR`), none twice (400
/// `BAD_BODY_ERR`). Whether one is already taken is checked against the
/// projection under the command lock (409 `KEY_ALIAS_NOT_UNIQUE_ERR`).
pub fn check_new_aliases(aliases: &[String]) -> Result<(), KeyError> {
    if aliases.len() > MAX_ALIASES {
        return Err(refused(
            Reason::AliasQuotaReached,
            format!("a key has at most {MAX_ALIASES} aliases"),
        ));
    }
    for (i, alias) in aliases.iter().enumerate() {
        check_alias(alias)?;
        if aliases[..i].contains(alias) {
            return Err(refused(
                Reason::InvalidRequest,
                format!("alias {alias:?} is given twice"),
            ));
        }
    }
    Ok(())
}

impl KeyService {
    /// `POST /key_rings/{id}`.
    pub fn create_key_ring(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<Receipt, KeyError> {
        check_key_ring_id(id)?;
        let _guard = self.lock_commands();
        if self.read().keys.key_ring_exists(id) {
            return Err(refused(
                Reason::KeyRingExists,
                format!("key ring {id} already exists"),
            ));
        }
        let event = KeyRingCreated {
            key_ring_id: id.to_string(),
        };
        self.decide_key_ring(actor, correlation_id, KeyRingChange::Create(event))
    }

    /// `DELETE /key_rings/{id}[?force=true]`: only an empty key ring, or
    /// with `force` one whose keys are all destroyed (those move to the
    /// default key ring first, as in Key Protect). The default key ring
    /// stays. Returns the receipt of `key_ring.deleted`.
    pub fn delete_key_ring(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        force: bool,
    ) -> Result<Receipt, KeyError> {
        if id == DEFAULT_KEY_RING {
            return Err(refused(
                Reason::InvalidRequest,
                "the default key ring cannot be deleted",
            ));
        }
        let _guard = self.lock_commands();
        let members: Vec<KeyRecord> = {
            let state = self.read();
            if !state.keys.key_rings.contains(id) {
                return Err(refused(
                    Reason::KeyRingNotFound,
                    format!("key ring {id:?} does not exist"),
                ));
            }
            state
                .keys
                .keys
                .values()
                .filter(|k| k.key_ring_id == id)
                .cloned()
                .collect()
        };
        let live = members.iter().any(|k| k.state != KeyState::Destroyed);
        if live || (!members.is_empty() && !force) {
            return Err(refused(
                Reason::KeyRingNotEmpty,
                "the key ring holds keys: move or delete them first (destroyed keys: force=true)",
            ));
        }
        for key in &members {
            let event = KeyMoved {
                key_id: key.id.clone(),
                from_key_ring_id: id.to_string(),
                to_key_ring_id: DEFAULT_KEY_RING.to_string(),
            };
            self.decide_key(actor, correlation_id, KeyChange::Move(event))?;
        }
        let event = KeyRingDeleted {
            key_ring_id: id.to_string(),
        };
        self.decide_key_ring(actor, correlation_id, KeyRingChange::Delete(event))
    }

    /// `PATCH /keys/{id}`: moves a key to another existing key ring.
    pub fn move_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        to_key_ring: &str,
    ) -> Result<(KeyRecord, Receipt), KeyError> {
        check_key_ring_id(to_key_ring)?;
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::Patch)?;
        if !self.read().keys.key_ring_exists(to_key_ring) {
            return Err(refused(
                Reason::KeyRingNotFound,
                format!("key ring {to_key_ring:?} does not exist"),
            ));
        }
        if key.key_ring_id == to_key_ring {
            return Err(refused(
                Reason::InvalidRequest,
                format!("the key is already in key ring {to_key_ring:?}"),
            ));
        }
        let event = KeyMoved {
            key_id: key.id.clone(),
            from_key_ring_id: key.key_ring_id.clone(),
            to_key_ring_id: to_key_ring.to_string(),
        };
        let receipt = self.decide_key(actor, correlation_id, KeyChange::Move(event))?;
        Ok((self.key(&key.id)?, receipt))
    }

    /// `POST /keys/{id}/aliases/{alias}`.
    pub fn create_alias(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        alias: &str,
    ) -> Result<(KeyRecord, Receipt), KeyError> {
        check_alias(alias)?;
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::CreateAlias)?;
        let event = KeyAliasCreated {
            key_id: key.id.clone(),
            alias: alias.to_string(),
        };
        let receipt = self.decide_key(actor, correlation_id, KeyChange::CreateAlias(event))?;
        Ok((self.key(&key.id)?, receipt))
    }

    /// `DELETE /keys/{id}/aliases/{alias}`.
    pub fn delete_alias(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        alias: &str,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::DeleteAlias)?;
        let event = KeyAliasDeleted {
            key_id: key.id,
            alias: alias.to_string(),
        };
        self.decide_key(actor, correlation_id, KeyChange::DeleteAlias(event))
    }
}
