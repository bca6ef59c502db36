//! Key lifecycle commands: create/import, rotate, enable/disable,
//! dual-authorisation delete, delete, restore, purge, expiry (activation:
//! `activation.rs`).

use chrono::{DateTime, Utc};

use super::approvals::{self, Gated};
use super::{KeyError, KeyService, TokenImport};
use crate::import_token::ImportError;
use crate::secret::SecretBytes;
use keyledger_core::decide::key::KeyChange;
use keyledger_core::event::{
    Actor, KeyCreated, KeyDisabled, KeyEnabled, KeyExpired, KeyPolicyUpdated, KeyRestored,
    KeyRotated,
};
use keyledger_core::governance::{ApprovalDenial, OP_KEY_DELETE, OP_KEY_PURGE};
use keyledger_core::keys::payload::{self, PayloadError};
use keyledger_core::keys::projection::{DEFAULT_KEY_RING, KeyRecord};
use keyledger_core::keys::state::{self, KeyAction, StateError};
use keyledger_core::reason::Reason;
use keyledger_ledger::writer::Receipt;

/// Where a new key version's material comes from.
pub enum KeyMaterialSource {
    /// Generated inside the HSM backend (AES-256).
    Generate,
    /// Supplied by the caller (imported key): see [`payload::check`] (a
    /// root key 32 bytes, a standard key 16, 24 or 32).
    Payload(SecretBytes),
    /// Supplied encrypted to the instance's import token (secure import of
    /// a root key); see [`TokenImport`].
    ImportToken(TokenImport),
}

/// A request to create or import a key.
pub struct CreateKey {
    pub name: String,
    pub description: Option<String>,
    /// false = root key.
    pub extractable: bool,
    pub key_ring_id: Option<String>,
    pub aliases: Vec<String>,
    pub expiration_date: Option<DateTime<Utc>>,
    /// When the key becomes usable. A date still ahead creates the key in
    /// state 0 (pre-activation): no wrap, unwrap, rotation or payload until
    /// the service activates it on that date. `None`: active at once.
    pub activation_date: Option<DateTime<Utc>>,
    pub material: KeyMaterialSource,
}

fn check_name(kind: &str, value: &str) -> Result<(), KeyError> {
    let ok = (2..=90).contains(&value.chars().count())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.: ".contains(c))
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if ok {
        Ok(())
    } else {
        Err(KeyError::Invalid(format!(
            "{kind} must be 2-90 characters of letters, digits, '-', '_', '.', ':' or spaces"
        )))
    }
}

fn bit_len(payload: &SecretBytes) -> u16 {
    u16::try_from(payload.len() * 8).unwrap_or(256)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl KeyService {
    /// Creates a root (extractable = false) or standard key, generated in
    /// the HSM backend or imported from a payload.
    pub fn create_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        request: CreateKey,
    ) -> Result<(KeyRecord, Receipt), KeyError> {
        check_name("name", &request.name)?;
        super::check_new_aliases(&request.aliases)?;
        if request
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 240)
        {
            return Err(KeyError::Invalid(
                "description must be at most 240 characters".into(),
            ));
        }
        let key_ring = request
            .key_ring_id
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_RING.to_string());
        let now = self.now();
        if request.expiration_date.is_some_and(|e| e <= now) {
            return Err(KeyError::Invalid(
                "expirationDate must be in the future".into(),
            ));
        }
        if let (Some(activation), Some(expiration)) =
            (request.activation_date, request.expiration_date)
            && expiration <= activation
        {
            return Err(KeyError::Invalid(
                "expirationDate must be after activationDate".into(),
            ));
        }
        if request.extractable && matches!(request.material, KeyMaterialSource::ImportToken(_)) {
            return Err(ImportError::RootKeyRequired.into());
        }
        if let KeyMaterialSource::Payload(payload) = &request.material {
            payload::check(request.extractable, payload.len())?;
        }
        let _guard = self.lock_commands();
        {
            let state = self.read();
            if !state.keys.key_ring_exists(&key_ring) {
                return Err(KeyError::Refused {
                    reason: Reason::KeyRingNotFound,
                    message: format!("key ring {key_ring:?} does not exist"),
                });
            }
            let imported = !matches!(request.material, KeyMaterialSource::Generate);
            let via_token = matches!(request.material, KeyMaterialSource::ImportToken(_));
            let gov = &state.governance;
            if !gov.may_create_key(request.extractable, imported) {
                let kind = match (imported, request.extractable) {
                    (false, false) => "creating root keys",
                    (false, true) => "creating standard keys",
                    (true, false) => "importing root keys",
                    (true, true) => "importing standard keys",
                };
                return Err(KeyError::PolicyDenied(format!(
                    "the instance policy keyCreateImportAccess does not allow {kind}"
                )));
            }
            if imported && !via_token && gov.import_token_enforced() {
                return Err(KeyError::PolicyDenied(
                    "the instance policy keyCreateImportAccess requires an import token (enforce_token)"
                        .into(),
                ));
            }
            if let Some(taken) = request
                .aliases
                .iter()
                .find(|a| state.keys.get_by_alias(a).is_some())
            {
                return Err(KeyError::Conflict(format!("alias {taken:?}")));
            }
        }
        let generation = self.current_generation()?;
        let key_id = new_id();
        let binding = self.binding(&key_id, 1, generation);
        let extractable = request.extractable;
        let (new, bit_length, import_token_id) = match &request.material {
            KeyMaterialSource::Generate => {
                (self.generate_material(&binding, extractable)?, 256, None)
            }
            KeyMaterialSource::Payload(payload) => (
                self.import_material(&binding, payload, extractable)?,
                bit_len(payload),
                None,
            ),
            KeyMaterialSource::ImportToken(import) => {
                let (payload, token_id) = self.open_token_import(import)?;
                let new = self.import_material(&binding, &payload, extractable)?;
                (new, bit_len(&payload), Some(token_id))
            }
        };
        let imported = !matches!(request.material, KeyMaterialSource::Generate);
        self.material
            .put(&self.instance, &key_id, 1, &new.wrapped)?;
        let event = KeyCreated {
            key_id: key_id.clone(),
            name: request.name,
            description: request.description,
            key_ring_id: key_ring,
            extractable: request.extractable,
            imported,
            algorithm: "AES".into(),
            bit_length,
            version_id: new_id(),
            key_check_value: new.kcv,
            expiration_date: request
                .expiration_date
                .map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            aliases: request.aliases,
            activation_date: request
                .activation_date
                .map(|a| a.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            import_token_id,
        };
        match self.decide_key(actor, correlation_id, KeyChange::Create(event)) {
            Ok(receipt) => Ok((self.key(&key_id)?, receipt)),
            Err(e) => {
                // No event, no key: shred the orphaned material.
                let _ = self.material.purge(&self.instance, &key_id);
                Err(e)
            }
        }
    }

    /// Checks `action` on a key: first its type (a standard key refuses the
    /// root-key actions, `KEY_ROOT_REQ_ERR`; bad input, so nothing is
    /// appended), then, after the transition its dates owe it is recorded
    /// (expiry, activation: `activation.rs`), the state table and time
    /// windows, recording a refusal as an event. The caller holds the
    /// command lock.
    pub(super) fn checked_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        action: KeyAction,
    ) -> Result<KeyRecord, KeyError> {
        let name = action_name(action);
        let key = match self.key(id) {
            Ok(k) => k,
            Err(e) => return Err(self.refuse(actor, correlation_id, id, name, e)),
        };
        state::check_key_type(key.extractable, action)?;
        let key = match self.apply_due_dates(key) {
            Ok(k) => k,
            Err(e) => return Err(self.refuse(actor, correlation_id, id, name, e)),
        };
        if let Err(e) = state::check_at(key.state, action, &key.timeline(), self.now()) {
            return Err(self.refuse(actor, correlation_id, &key.id, name, e.into()));
        }
        Ok(key)
    }

    /// Rotates a key: a new version; old versions still unwrap. Imported
    /// keys rotate to a new caller-supplied payload.
    pub fn rotate_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        payload: Option<SecretBytes>,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        // Input first, recorded nowhere: the key's type, then the payload
        // (only root keys rotate, so the root-key rule of `payload::check`).
        if let Ok(key) = self.key(id) {
            state::check_key_type(key.extractable, KeyAction::Rotate)?;
            match (key.imported, &payload) {
                (true, Some(p)) => payload::check(key.extractable, p.len())?,
                (true, None) => {
                    return Err(KeyError::Refused {
                        reason: Reason::PayloadRequired,
                        message: "this root key was created with user-supplied key material: \
                                  key material is required to rotate it"
                            .into(),
                    });
                }
                (false, Some(_)) => {
                    return Err(KeyError::Invalid(
                        "a generated key rotates without a payload".into(),
                    ));
                }
                (false, None) => {}
            }
        }
        let key = self.checked_key(actor, correlation_id, id, KeyAction::Rotate)?;
        let generation = self.current_generation()?;
        let version = u32::try_from(key.versions.len() + 1)
            .map_err(|_| KeyError::Invalid("too many versions".into()))?;
        let binding = self.binding(&key.id, version, generation);
        let new = match &payload {
            Some(p) => self.import_material(&binding, p, key.extractable)?,
            None => self.generate_material(&binding, key.extractable)?,
        };
        self.store_new_version(&key.id, version, &new.wrapped)?;
        let event = KeyRotated {
            key_id: key.id.clone(),
            version_id: new_id(),
            key_check_value: new.kcv,
            imported: key.imported,
        };
        self.decide_key(actor, correlation_id, KeyChange::Rotate(event))
    }

    pub fn enable_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::Enable)?;
        self.decide_key(
            actor,
            correlation_id,
            KeyChange::Enable(KeyEnabled { key_id: key.id }),
        )
    }

    pub fn disable_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::Disable)?;
        self.decide_key(
            actor,
            correlation_id,
            KeyChange::Disable(KeyDisabled { key_id: key.id }),
        )
    }

    /// First authorisation of a dual-authorisation delete
    /// (`setKeyForDeletion`): an `approval.requested` for `key.delete` by
    /// `actor`, approvable by one other principal for seven days.
    pub fn set_key_for_deletion(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::SetKeyForDeletion)?;
        let open = self.open_request(OP_KEY_DELETE, &key.id);
        let dual_auth = self.dual_auth_applies(&key);
        if let Err(e) = approvals::check_new_deletion_request(dual_auth, open.as_ref(), &key.id) {
            return Err(self.refuse(actor, correlation_id, &key.id, "setKeyForDeletion", e));
        }
        self.request_approval(actor, correlation_id, OP_KEY_DELETE, &key.id)
            .map(|(_, receipt)| receipt)
    }

    /// `unsetKeyForDeletion`: cancels the pending deletion request.
    pub fn unset_key_for_deletion(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::UnsetKeyForDeletion)?;
        if !self.dual_auth_applies(&key) {
            let e = StateError::NotDualAuth.into();
            return Err(self.refuse(actor, correlation_id, &key.id, "unsetKeyForDeletion", e));
        }
        let Some((request_id, approval)) = self.open_request(OP_KEY_DELETE, &key.id) else {
            let e = ApprovalDenial::NothingPending {
                operation: OP_KEY_DELETE.into(),
                target: key.id.clone(),
            };
            return Err(self.refuse(
                actor,
                correlation_id,
                &key.id,
                "unsetKeyForDeletion",
                e.into(),
            ));
        };
        self.cancel_checked(
            actor,
            correlation_id,
            &request_id,
            &approval,
            "unsetKeyForDeletion",
        )
    }

    /// Deletes (destroys) a key: state 5, material kept until purge. Under
    /// dual authorisation (key or instance policy) the delete is the second
    /// authorisation: it approves the pending `key.delete` request of
    /// another principal and the worker executes it (`key.destroyed` with
    /// the request id); without one, or by the requester, it is refused
    /// (`AUTHORIZATIONS_NOT_MET`). Returns the receipt of `key.destroyed`.
    pub fn delete_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        force: bool,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::Delete)?;
        if !self.dual_auth_applies(&key) {
            return self.destroy(actor, correlation_id, &key.id, force, None);
        }
        let Some(request) = self.latest_request(OP_KEY_DELETE, &key.id) else {
            let e = approvals::authorizations_not_met();
            return Err(self.refuse(actor, correlation_id, &key.id, "delete", e));
        };
        // Requests the key service makes need one approval, so the second
        // authorisation executes the delete.
        self.second_authorisation(actor, correlation_id, &key, request, force)
            .map(|gated| gated.receipt().clone())
    }

    /// Restores a destroyed key within 30 days of its deletion (its
    /// material is kept until purge, so no key material is needed).
    pub fn restore_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<Receipt, KeyError> {
        self.restore_key_with(actor, correlation_id, id, KeyMaterialSource::Generate)
    }

    /// [`Self::restore_key`] with the key material a Key Protect client
    /// sends to restore an imported key (`payload`, or `payload`,
    /// `encryptedNonce` and `iv` against the import token;
    /// [`KeyMaterialSource::Generate`]: none). Given material must pass
    /// [`payload::check`] for the key's type and be the material of the
    /// key's current version (same key check value); only imported keys
    /// take material (`KEY_IMPT_REQ_ERR`). These refusals are bad input and
    /// append nothing.
    pub fn restore_key_with(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        material: KeyMaterialSource,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        if let Ok(key) = self.key(id) {
            self.check_restore_material(&key, material)?;
        }
        let key = self.checked_key(actor, correlation_id, id, KeyAction::Restore)?;
        let current = key
            .current_version()
            .cloned()
            .ok_or_else(|| KeyError::NotFound(key.id.clone()))?;
        if self
            .material
            .get(&self.instance, &key.id, current.version)?
            .is_none()
        {
            return Err(self.refuse(
                actor,
                correlation_id,
                &key.id,
                "restore",
                KeyError::NotFound(key.id.clone()),
            ));
        }
        let event = KeyRestored {
            key_id: key.id,
            version_id: current.id,
            key_check_value: current.kcv,
        };
        self.decide_key(actor, correlation_id, KeyChange::Restore(event))
    }

    /// The material given to restore `key`, checked (see
    /// [`Self::restore_key_with`]). The caller holds the command lock.
    fn check_restore_material(
        &self,
        key: &KeyRecord,
        material: KeyMaterialSource,
    ) -> Result<(), KeyError> {
        let given = match material {
            KeyMaterialSource::Generate => return Ok(()),
            _ if !key.imported => {
                return Err(KeyError::Refused {
                    reason: Reason::ImportedKeyRequired,
                    message: "only imported keys are restored with key material".into(),
                });
            }
            KeyMaterialSource::Payload(payload) => payload,
            KeyMaterialSource::ImportToken(_) if key.extractable => {
                return Err(ImportError::RootKeyRequired.into());
            }
            KeyMaterialSource::ImportToken(import) => self.open_token_import(&import)?.0,
        };
        payload::check(key.extractable, given.len())?;
        let matches = key
            .current_version()
            .is_some_and(|v| crate::hsm::ceremony::kcv(given.expose()) == v.kcv);
        if !matches {
            return Err(PayloadError::NotTheKeyMaterial.into());
        }
        Ok(())
    }

    /// Purges a destroyed key (at least 4 hours after deletion): its wrapped
    /// material is shredded first, then `key.purged` is recorded; afterwards
    /// nothing can unwrap its ciphertexts. Under dual authorisation the
    /// purge is gated like a delete: the first call records a `key.purge`
    /// request ([`Gated::Pending`]), a call by another principal within seven
    /// days approves it and the worker executes it ([`Gated::Executed`]).
    pub fn purge_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<Gated, KeyError> {
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::Purge)?;
        if !self.dual_auth_applies(&key) {
            return self
                .shred(actor, correlation_id, &key.id, None)
                .map(Gated::Executed);
        }
        if let Some(request) = self.open_request(OP_KEY_PURGE, &key.id) {
            return self.second_authorisation(actor, correlation_id, &key, request, false);
        }
        let (request_id, receipt) =
            self.request_approval(actor, correlation_id, OP_KEY_PURGE, &key.id)?;
        Ok(Gated::Pending {
            request_id,
            receipt,
        })
    }

    /// Sets a key policy: `dualAuthDelete` (enabled) or `rotation`
    /// (enabled, interval in months 1-12). A key's dual-authorisation
    /// delete, once on, is never switched off
    /// ([`state::check_dual_auth_policy`]).
    pub fn set_key_policy(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        policy_type: &str,
        enabled: bool,
        interval_month: Option<u8>,
    ) -> Result<Receipt, KeyError> {
        match (policy_type, interval_month) {
            ("dualAuthDelete", None) => {}
            ("rotation", Some(1..=12)) | ("rotation", None)
                if !enabled || interval_month.is_some() => {}
            _ => {
                return Err(KeyError::Invalid(
                    "policy must be dualAuthDelete, or rotation with interval_month 1-12".into(),
                ));
            }
        }
        let _guard = self.lock_commands();
        let key = self.checked_key(actor, correlation_id, id, KeyAction::SetPolicy)?;
        if policy_type == "dualAuthDelete" {
            // Refused like a bad body: nothing is written.
            state::check_dual_auth_policy(key.dual_auth_delete.enabled, enabled)?;
        }
        // The key projection drops a pending authorisation on this update:
        // the request it came from is cancelled first, so both agree.
        if policy_type == "dualAuthDelete"
            && let Some((request_id, approval)) = self.open_request(OP_KEY_DELETE, &key.id)
        {
            let reason = "dualAuthDelete policy updated";
            self.cancel_checked(actor, correlation_id, &request_id, &approval, reason)?;
        }
        let event = KeyPolicyUpdated {
            key_id: key.id,
            policy_type: policy_type.to_string(),
            enabled,
            interval_month,
        };
        self.decide_key(actor, correlation_id, KeyChange::SetPolicy(event))
    }

    /// Moves every key past its expiration date to Deactivated (state 3);
    /// returns how many expired. Run by the scheduler; time is the service clock.
    pub fn expire_due(&self) -> Result<usize, KeyError> {
        let _guard = self.lock_commands();
        let now = self.now();
        let due: Vec<String> = self
            .read()
            .keys
            .keys
            .values()
            .filter(|k| {
                state::due_transition(k.state, &k.timeline(), now) == Some(KeyAction::Expire)
            })
            .map(|k| k.id.clone())
            .collect();
        for key_id in &due {
            let event = KeyExpired {
                key_id: key_id.clone(),
            };
            self.decide_key(&Actor::system(), "key-expiry", KeyChange::Expire(event))?;
        }
        Ok(due.len())
    }
}

/// Key Protect's name of an action, for refusal events.
pub(super) fn action_name(action: KeyAction) -> &'static str {
    match action {
        KeyAction::ReadMetadata => "read",
        KeyAction::GetPayload => "getPayload",
        KeyAction::Wrap => "wrap",
        KeyAction::Unwrap => "unwrap",
        KeyAction::Rewrap => "rewrap",
        KeyAction::Rotate => "rotate",
        KeyAction::Enable => "enable",
        KeyAction::Disable => "disable",
        KeyAction::SetKeyForDeletion => "setKeyForDeletion",
        KeyAction::UnsetKeyForDeletion => "unsetKeyForDeletion",
        KeyAction::Delete => "delete",
        KeyAction::Restore => "restore",
        KeyAction::Purge => "purge",
        KeyAction::Patch => "patch",
        KeyAction::CreateAlias => "createAlias",
        KeyAction::DeleteAlias => "deleteAlias",
        KeyAction::SetPolicy => "setPolicy",
        KeyAction::Sync => "sync",
        KeyAction::Register => "register",
        KeyAction::Expire => "expire",
        KeyAction::Activate => "activate",
    }
}
