//! The key holders' side of a generated life: writers (and now and then
//! managers) create keys, wrap, unwrap and rewrap with them, read standard
//! keys' payloads, rotate and give aliases; managers set policies, disable,
//! enable, delete (under dual authorisation by asking a second manager:
//! `super::approvals`), restore and purge. Each is a key command the key
//! aggregate decides, built as the key service builds it.

use super::{Life, LifeError, MIN_ROOT_KEYS, NAMES, random32};
use crate::hsm::ceremony;
use crate::secret::SecretBytes;
use keyledger_core::decide::key::KeyChange;
use keyledger_core::event::{
    EventDraft, KeyAliasCreated, KeyAliasDeleted, KeyCreated, KeyDestroyed, KeyDisabled,
    KeyEnabled, KeyPayloadRead, KeyPolicyUpdated, KeyPurged, KeyRestored, KeyRewrapped, KeyRotated,
    KeyUnwrapped, KeyWrapped,
};
use keyledger_core::governance::{OP_KEY_DELETE, OP_KEY_PURGE};
use keyledger_core::keys::state::{PURGE_DELAY, RESTORE_WINDOW};

impl Life {
    pub(super) fn wrap(&mut self) -> Result<Vec<EventDraft>, LifeError> {
        if let Some((key_id, version)) = self.root_key_version(true) {
            let change = KeyChange::Wrap(KeyWrapped {
                key_id,
                version_id: version,
                generated_dek: self.rng.below(3) == 0,
                aad_entries: u32::from(self.rng.below(4) == 0),
                ciphertext_digest: self.ciphertext_digest(),
            });
            let actor = self.writer();
            if let Some(step) = self.key(actor, change)? {
                return Ok(step);
            }
        }
        self.create_key(false)
    }

    pub(super) fn unwrap(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some((key_id, version)) = self.root_key_version(false) else {
            return Ok(None);
        };
        let change = KeyChange::Unwrap(KeyUnwrapped {
            key_id,
            version_id: version,
            rewrapped_version_id: None,
            ciphertext_digest: self.ciphertext_digest(),
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    pub(super) fn rewrap(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(record) = self.state.keys.get(&key_id) else {
            return Ok(None);
        };
        if record.versions.len() < 2 {
            return Ok(None);
        }
        let older = self.rng.below(record.versions.len() as u64 - 1) as usize;
        let (from, to) = (
            record.versions[older].id.clone(),
            record.versions[record.versions.len() - 1].id.clone(),
        );
        let change = KeyChange::Rewrap(KeyRewrapped {
            key_id,
            from_version_id: from,
            to_version_id: to,
            ciphertext_digest: self.ciphertext_digest(),
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    pub(super) fn read_payload(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.standard.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(version) = self
            .state
            .keys
            .get(&key_id)
            .and_then(|k| k.current_version())
            .map(|v| v.id.clone())
        else {
            return Ok(None);
        };
        let change = KeyChange::ReadPayload(KeyPayloadRead {
            key_id,
            version_id: version,
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    /// An active root key and one of its versions: the current one (to
    /// wrap), or for an unwrap now and then an older one (old ciphertexts).
    pub(super) fn root_key_version(&mut self, current: bool) -> Option<(String, String)> {
        let key_id = self.keys.root.pick(&mut self.rng)?;
        let record = self.state.keys.get(&key_id)?;
        let n = record.versions.len();
        let i = if current || n < 2 || self.rng.below(5) != 0 {
            n.checked_sub(1)?
        } else {
            self.rng.below(n as u64) as usize
        };
        Some((key_id, record.versions.get(i)?.id.clone()))
    }

    /// A writer creates a root key (or a standard key of 128, 192 or 256
    /// bits), its first version's material drawn and its key check value
    /// computed as the HSM computes it.
    pub(super) fn create_key(&mut self, standard: bool) -> Result<Vec<EventDraft>, LifeError> {
        let bytes: usize = if standard {
            [16, 24, 32][self.rng.below(3) as usize]
        } else {
            32
        };
        let material = SecretBytes::random(bytes).map_err(|e| LifeError::Event(e.to_string()))?;
        let name = format!(
            "{}-{}",
            NAMES[self.rng.below(NAMES.len() as u64) as usize],
            if standard { "secret" } else { "kek" }
        );
        let aliases = if self.rng.below(4) == 0 {
            vec![format!("{name}-{}", hex::encode(&random32()?[..3]))]
        } else {
            Vec::new()
        };
        let event = KeyCreated {
            key_id: uuid::Uuid::new_v4().to_string(),
            name,
            description: Some("created by the application's deploy pipeline".into()),
            key_ring_id: keyledger_core::keys::projection::DEFAULT_KEY_RING.into(),
            extractable: standard,
            imported: false,
            algorithm: "AES".into(),
            bit_length: u16::try_from(bytes * 8).unwrap_or(256),
            version_id: uuid::Uuid::new_v4().to_string(),
            key_check_value: ceremony::kcv(material.expose()),
            expiration_date: None,
            aliases,
            activation_date: None,
            import_token_id: None,
        };
        let actor = self.writer();
        match self.key(actor, KeyChange::Create(event))? {
            Some(step) => Ok(step),
            None => Err(LifeError::Stuck(format!(
                "{} refuses to create keys (no active master key, or no writer)",
                self.instance
            ))),
        }
    }

    pub(super) fn rotate(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let material = SecretBytes::random(32).map_err(|e| LifeError::Event(e.to_string()))?;
        let imported = self.state.keys.get(&key_id).is_some_and(|k| k.imported);
        let change = KeyChange::Rotate(KeyRotated {
            key_id,
            version_id: uuid::Uuid::new_v4().to_string(),
            key_check_value: ceremony::kcv(material.expose()),
            imported,
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    pub(super) fn create_alias(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let alias = format!("app-{}", hex::encode(&random32()?[..4]));
        let actor = self.writer();
        self.key(
            actor,
            KeyChange::CreateAlias(KeyAliasCreated { key_id, alias }),
        )
    }

    pub(super) fn delete_alias(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(alias) = self
            .state
            .keys
            .get(&key_id)
            .and_then(|k| k.aliases.first().cloned())
        else {
            return Ok(None);
        };
        let actor = self.writer();
        self.key(
            actor,
            KeyChange::DeleteAlias(KeyAliasDeleted { key_id, alias }),
        )
    }

    pub(super) fn set_dual_auth(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        if self
            .state
            .keys
            .get(&key_id)
            .is_some_and(|k| k.dual_auth_delete.enabled)
        {
            return Ok(None);
        }
        let actor = self.manager();
        self.key(
            actor,
            KeyChange::SetPolicy(KeyPolicyUpdated {
                key_id,
                policy_type: "dualAuthDelete".into(),
                enabled: true,
                interval_month: None,
            }),
        )
    }

    pub(super) fn set_rotation_policy(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let months = [1, 3, 6, 12][self.rng.below(4) as usize];
        let actor = self.manager();
        self.key(
            actor,
            KeyChange::SetPolicy(KeyPolicyUpdated {
                key_id,
                policy_type: "rotation".into(),
                enabled: true,
                interval_month: Some(months),
            }),
        )
    }

    pub(super) fn disable(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        if self.keys.root.len() <= MIN_ROOT_KEYS {
            return Ok(None);
        }
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let actor = self.manager();
        self.key(actor, KeyChange::Disable(KeyDisabled { key_id }))
    }

    pub(super) fn enable(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.suspended.pick(&mut self.rng) else {
            return Ok(None);
        };
        let actor = self.manager();
        self.key(actor, KeyChange::Enable(KeyEnabled { key_id }))
    }

    /// A manager deletes a key: at once, or under dual authorisation by
    /// asking a second manager (`setKeyForDeletion`: an approval request),
    /// as `KeyService::delete_key` and `set_key_for_deletion` do.
    pub(super) fn delete(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let pool = if self.rng.below(4) == 0 && self.keys.suspended.len() > 0 {
            &self.keys.suspended
        } else {
            &self.keys.root
        };
        if pool.len() <= MIN_ROOT_KEYS / 2 {
            return Ok(None);
        }
        let Some(key_id) = pool.pick(&mut self.rng) else {
            return Ok(None);
        };
        let dual = self
            .state
            .keys
            .get(&key_id)
            .is_some_and(|k| k.dual_auth_delete.enabled);
        let actor = self.manager();
        if !dual {
            return self.key(
                actor,
                KeyChange::Destroy(KeyDestroyed {
                    key_id,
                    force: false,
                    approval_request_id: None,
                }),
            );
        }
        self.request(actor, OP_KEY_DELETE, &key_id)
    }

    /// A manager purges a destroyed key 4 hours or more after its deletion:
    /// at once, or under dual authorisation by asking a second manager.
    pub(super) fn purge(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.destroyed.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(record) = self.state.keys.get(&key_id) else {
            return Ok(None);
        };
        if record
            .deletion_date
            .is_none_or(|d| self.now < d + PURGE_DELAY)
        {
            return Ok(None);
        }
        let (dual, versions) = (
            record.dual_auth_delete.enabled,
            u32::try_from(record.versions.len()).unwrap_or(u32::MAX),
        );
        let actor = self.manager();
        if !dual {
            return self.key(
                actor,
                KeyChange::Purge(KeyPurged {
                    key_id,
                    versions_shredded: versions,
                    approval_request_id: None,
                }),
            );
        }
        self.request(actor, OP_KEY_PURGE, &key_id)
    }

    pub(super) fn restore(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.destroyed.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(record) = self.state.keys.get(&key_id) else {
            return Ok(None);
        };
        if record
            .deletion_date
            .is_none_or(|d| self.now >= d + RESTORE_WINDOW)
        {
            return Ok(None);
        }
        let Some(current) = record.current_version() else {
            return Ok(None);
        };
        let change = KeyChange::Restore(KeyRestored {
            key_id,
            version_id: current.id.clone(),
            key_check_value: current.kcv.clone(),
        });
        let actor = self.manager();
        self.key(actor, change)
    }
}
