//! The master-key ceremony, as events: key owners are registered with their
//! public keys; each submits one part sealed to the backend's ceremony key
//! and signed with their own key; the parts are committed (combined) and the
//! new master key activated. Activating a second generation rotates: every
//! key version's material is re-wrapped to the new master key and the old one
//! retired. After a restart of the software HSM the same flow re-loads the
//! current generation (unseal) and must reproduce its verification pattern.
//!
//! The quorum of administrators that gates these steps is the governance
//! layer's job; here every step is validated and audited.

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{KeyError, KeyService};
use crate::hsm::SealedPart;
use keyledger_core::decide::master_key::MasterKeyChange;
use keyledger_core::event::{
    Actor, InstanceUnsealed, MasterKeyActivated, MasterKeyCommitted, MasterKeyPartLoaded,
    MasterKeyRotated, SignedCommandRef,
};
use keyledger_ledger::writer::Receipt;

/// Fewest key owners (and parts) a master key is made of.
pub use keyledger_core::governance::MIN_KEY_OWNERS;

/// Where the ceremony stands, for key owners and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyStatus {
    /// The generation parts are loaded for now.
    pub generation: u32,
    /// True when the ceremony re-loads the current master key after a restart.
    pub unseal: bool,
    /// X25519 public key to seal parts to.
    pub public_key: [u8; 32],
    /// Owners whose parts are loaded.
    pub loaded: Vec<String>,
    /// Registered owners.
    pub owners: Vec<String>,
}

/// The message a key owner signs to submit a sealed part:
/// `"keyledger/v1/part-submission" || 0x00 || u16be len || instance ||
/// u32be generation || u16be len || owner_id || SHA-256(enc) || SHA-256(ciphertext)`.
pub fn part_submission_message(
    instance: &str,
    generation: u32,
    owner_id: &str,
    part: &SealedPart,
) -> Vec<u8> {
    let mut m = b"keyledger/v1/part-submission\0".to_vec();
    for (i, field) in [instance, owner_id].iter().enumerate() {
        if i == 1 {
            m.extend_from_slice(&generation.to_be_bytes());
        }
        let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&field.as_bytes()[..usize::from(len)]);
    }
    m.extend_from_slice(&Sha256::digest(&part.enc));
    m.extend_from_slice(&Sha256::digest(&part.ciphertext));
    m
}

/// The message a key owner signs to read the ceremony status
/// (`GET /admin/ceremony`): `"keyledger/v1/ceremony-status" || 0x00 ||
/// u16be len || instance || u16be len || owner_id || i64be unix_time`.
pub fn ceremony_status_message(instance: &str, owner_id: &str, unix_time: i64) -> Vec<u8> {
    let mut m = b"keyledger/v1/ceremony-status\0".to_vec();
    for field in [instance, owner_id] {
        let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&field.as_bytes()[..usize::from(len)]);
    }
    m.extend_from_slice(&unix_time.to_be_bytes());
    m
}

/// How far a status request's time may be from the server's clock.
pub const STATUS_REQUEST_SKEW_SECS: i64 = 300;

fn owner_signature_valid(owner_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(owner_key)
        .map(|k| {
            k.verify_strict(message, &Signature::from_bytes(signature))
                .is_ok()
        })
        .unwrap_or(false)
}

impl KeyService {
    /// The ceremony status for a registered key owner who signed
    /// [`ceremony_status_message`] for this instance within
    /// [`STATUS_REQUEST_SKEW_SECS`] of now. Anyone else gets
    /// [`KeyError::Unauthenticated`]: the status names the owners and what
    /// they loaded, which is nobody else's business. Nothing is logged.
    pub fn ceremony_status_for_owner(
        &self,
        owner_id: &str,
        unix_time: i64,
        signature: &[u8; 64],
    ) -> Result<CeremonyStatus, KeyError> {
        let unproven = || KeyError::Unauthenticated("not a registered key owner's request".into());
        if (self.now().timestamp() - unix_time).abs() > STATUS_REQUEST_SKEW_SECS {
            return Err(unproven());
        }
        let owner_key = self
            .read()
            .master
            .owners
            .get(owner_id)
            .map(|o| o.public_key)
            .ok_or_else(unproven)?;
        let message = ceremony_status_message(&self.instance, owner_id, unix_time);
        if !owner_signature_valid(&owner_key, &message, signature) {
            return Err(unproven());
        }
        self.ceremony_status()
    }

    /// The generation parts are loaded for now, and whether that is the
    /// unseal of the current one (the HSM lost it in a restart).
    fn ceremony_generation(&self) -> Result<(u32, bool), KeyError> {
        let current = self.read().master.current.clone();
        let sealed_current = match &current {
            Some((g, _)) => {
                self.hsm
                    .master_key_status(&self.instance)?
                    .current
                    .map(|(h, _)| h)
                    != Some(*g)
            }
            None => false,
        };
        Ok(match (&current, sealed_current) {
            (Some((g, _)), true) => (*g, true),
            _ => (self.read().master.next_generation(), false),
        })
    }

    /// The ceremony key owners seal parts to, and what is loaded so far.
    pub fn ceremony_status(&self) -> Result<CeremonyStatus, KeyError> {
        let (generation, unseal) = self.ceremony_generation()?;
        let (owners, loaded) = {
            let state = self.read();
            let loaded = state
                .master
                .pending
                .as_ref()
                .filter(|p| p.generation == generation)
                .map(|p| p.parts.keys().cloned().collect())
                .unwrap_or_default();
            let owners = state.master.owners.keys().cloned().collect();
            (owners, loaded)
        };
        Ok(CeremonyStatus {
            generation,
            unseal,
            public_key: self.hsm.ceremony_public_key(&self.instance, generation)?,
            loaded,
            owners,
        })
    }

    /// Whether `owner_id` is a registered key owner whose signature over
    /// this part for `generation` verifies.
    fn prove_part_owner(
        &self,
        generation: u32,
        owner_id: &str,
        part: &SealedPart,
        signature: &[u8; 64],
    ) -> Result<(), KeyError> {
        let owner_key = self
            .read()
            .master
            .owners
            .get(owner_id)
            .map(|o| o.public_key);
        let Some(owner_key) = owner_key else {
            return Err(KeyError::UnknownKeyOwner(
                owner_id.chars().take(64).collect(),
            ));
        };
        let message = part_submission_message(&self.instance, generation, owner_id, part);
        if owner_signature_valid(&owner_key, &message, signature) {
            Ok(())
        } else {
            Err(KeyError::BadOwnerSignature(
                owner_id.chars().take(64).collect(),
            ))
        }
    }

    /// A key owner submits their sealed part for the ceremony's generation.
    /// Returns the part's verification pattern for the owner to compare.
    ///
    /// Identity first: a part from an owner id that is not registered, or
    /// whose signature does not verify with the registered owner's key,
    /// proves nobody; it is refused ([`KeyError::UnknownKeyOwner`],
    /// [`KeyError::BadOwnerSignature`]) and not logged, so a stranger can
    /// neither write to the log nor choose the name it is written under.
    /// Refusals of a proven owner (loading not approved, a duplicate or
    /// undecryptable part) are recorded (`access.denied`) under that owner.
    pub fn submit_part(
        &self,
        correlation_id: &str,
        owner_id: &str,
        part: &SealedPart,
        signature: &[u8; 64],
    ) -> Result<(String, Receipt), KeyError> {
        // Strangers are turned away before they take the command lock or
        // reach the HSM; then again under the lock (the state may have moved).
        let (generation, _) = self.ceremony_generation()?;
        self.prove_part_owner(generation, owner_id, part, signature)?;
        let _guard = self.lock_commands();
        let status = self.ceremony_status()?;
        self.prove_part_owner(status.generation, owner_id, part, signature)?;
        // Proven: `owner_id` is a registered owner who signed this part.
        let actor = Actor {
            principal: owner_id.to_string(),
            role: keyledger_core::event::Role::KeyOwner,
            auth: keyledger_core::event::AuthMethod::KeyOwnerCredential,
        };
        let approved = status.unseal
            || self
                .read()
                .governance
                .load_approved
                .contains(&status.generation);
        if !approved {
            let target = format!("master_key/{}", status.generation);
            return Err(self.deny(
                &actor,
                correlation_id,
                "master_key.load_part",
                &target,
                KeyError::Ceremony(format!(
                    "loading generation {} has not been approved by the administrators (master_key.approve_load)",
                    status.generation
                )),
            ));
        }
        let vp = match self
            .hsm
            .load_part(&self.instance, status.generation, owner_id, part)
        {
            Ok(vp) => vp,
            Err(e) => {
                let target = format!("master_key/{}", status.generation);
                return Err(self.deny(
                    &actor,
                    correlation_id,
                    "master_key.load_part",
                    &target,
                    e.into(),
                ));
            }
        };
        let event = MasterKeyPartLoaded {
            generation: status.generation,
            owner_id: owner_id.to_string(),
            part_index: u8::try_from(status.loaded.len() + 1).unwrap_or(u8::MAX),
            verification_pattern: vp.clone(),
        };
        let change = MasterKeyChange::LoadPart(event);
        let receipt = self.decide_master_key(&actor, correlation_id, change)?;
        Ok((vp, receipt))
    }

    /// Unseal after a restart, step 1: combines the re-loaded parts of the
    /// current generation, which must reproduce its verification pattern.
    /// A new master key is committed only by administrator command
    /// (`master_key.commit`).
    pub fn commit_master_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
    ) -> Result<String, KeyError> {
        let _guard = self.lock_commands();
        self.commit_parts(actor, correlation_id, None)
            .map(|(vp, _)| vp)
    }

    /// `master_key.commit` by administrator command (already authorised).
    pub(super) fn commit_new_master_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        command: SignedCommandRef,
    ) -> Result<Receipt, KeyError> {
        self.commit_parts(actor, correlation_id, Some(command))
            .map(|(_, receipt)| receipt)
    }

    /// Combines the loaded parts. Every registered key owner (at least two)
    /// must have loaded a part. On unseal, the result must reproduce the
    /// current master key's verification pattern.
    fn commit_parts(
        &self,
        actor: &Actor,
        correlation_id: &str,
        command: Option<SignedCommandRef>,
    ) -> Result<(String, Receipt), KeyError> {
        let status = self.ceremony_status()?;
        if status.unseal == command.is_some() {
            let target = format!("master_key/{}", status.generation);
            let e = KeyError::Ceremony(if status.unseal {
                "the instance is sealed: key owners re-load the current master key, no command is needed".into()
            } else {
                "a new master key is committed only by administrator command (master_key.commit)"
                    .into()
            });
            return Err(self.deny(actor, correlation_id, "master_key.commit", &target, e));
        }
        let target = format!("master_key/{}", status.generation);
        if status.owners.len() < MIN_KEY_OWNERS {
            let e = KeyError::Ceremony(format!(
                "at least {MIN_KEY_OWNERS} key owners must be registered"
            ));
            return Err(self.deny(actor, correlation_id, "master_key.commit", &target, e));
        }
        if let Some(missing) = status.owners.iter().find(|o| !status.loaded.contains(o)) {
            let e = KeyError::Ceremony(format!("key owner {missing:?} has not loaded a part"));
            return Err(self.deny(actor, correlation_id, "master_key.commit", &target, e));
        }
        let min_parts = u8::try_from(status.owners.len()).unwrap_or(u8::MAX);
        let vp = match self
            .hsm
            .commit(&self.instance, status.generation, min_parts)
        {
            Ok(vp) => vp,
            Err(e) => {
                return Err(self.deny(
                    actor,
                    correlation_id,
                    "master_key.commit",
                    &target,
                    e.into(),
                ));
            }
        };
        if status.unseal {
            let expected = self
                .read()
                .master
                .current
                .as_ref()
                .map(|(_, vp)| vp.clone());
            if expected.as_deref() != Some(vp.as_str()) {
                let _ = self.hsm.discard_new(&self.instance);
                return Err(self.deny(
                    actor,
                    correlation_id,
                    "master_key.commit",
                    &target,
                    KeyError::WrongParts,
                ));
            }
        }
        let event = MasterKeyCommitted {
            generation: status.generation,
            parts: min_parts,
            verification_pattern: vp.clone(),
            command,
        };
        // Audit first: a commit the log does not hold must not stay in the
        // HSM's "new" register; the key owners re-submit their parts.
        let receipt =
            match self.decide_master_key(actor, correlation_id, MasterKeyChange::Commit(event)) {
                Ok(r) => r,
                Err(e) => {
                    let _ = self.hsm.discard_new(&self.instance);
                    return Err(e);
                }
            };
        Ok((vp, receipt))
    }

    /// Makes the committed master key current: the first activation, a
    /// rotation (re-wraps every key version's material, then retires the old
    /// master key), or the unseal of the current generation after a restart.
    pub fn activate_master_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
    ) -> Result<Receipt, KeyError> {
        let _guard = self.lock_commands();
        if !self.read().master.pending_is_unseal() {
            let e = KeyError::Ceremony(
                "a new master key is activated only by administrator command (master_key.activate)"
                    .into(),
            );
            return Err(self.deny(
                actor,
                correlation_id,
                "master_key.activate",
                "master_key",
                e,
            ));
        }
        self.activate_pending(actor, correlation_id, None)
    }

    /// `master_key.activate` by administrator command (already authorised).
    pub(super) fn activate_new_master_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        command: SignedCommandRef,
    ) -> Result<Receipt, KeyError> {
        self.activate_pending(actor, correlation_id, Some(command))
    }

    fn activate_pending(
        &self,
        actor: &Actor,
        correlation_id: &str,
        command: Option<SignedCommandRef>,
    ) -> Result<Receipt, KeyError> {
        let (pending, current) = {
            let state = self.read();
            (state.master.pending.clone(), state.master.current.clone())
        };
        let Some(pending) = pending.filter(|p| p.committed.is_some()) else {
            let e = KeyError::Ceremony("no committed master key to activate".into());
            return Err(self.deny(
                actor,
                correlation_id,
                "master_key.activate",
                "master_key",
                e,
            ));
        };
        let vp = pending.committed.clone().unwrap_or_default();
        let target = format!("master_key/{}", pending.generation);
        // Decided before the HSM switches generations: a refused step
        // changes nothing. The rotation's count of re-wrapped keys, which
        // only the re-wrap can tell and no rule reads, is filled in after.
        let change = match &current {
            Some((g, _)) if *g == pending.generation => MasterKeyChange::Unseal(InstanceUnsealed {
                master_key_generation: *g,
                verification_pattern: vp.clone(),
            }),
            Some((old, _)) => MasterKeyChange::Rotate(MasterKeyRotated {
                from_generation: *old,
                to_generation: pending.generation,
                keys_rewrapped: 0,
                command: command.clone(),
            }),
            None => MasterKeyChange::Activate(MasterKeyActivated {
                generation: pending.generation,
                verification_pattern: vp.clone(),
                command: command.clone(),
            }),
        };
        self.decide_master_key_only(actor, correlation_id, &change)?;
        if let Err(e) = self.hsm.activate(&self.instance, pending.generation) {
            return Err(self.deny(
                actor,
                correlation_id,
                "master_key.activate",
                &target,
                e.into(),
            ));
        }
        match current {
            Some((g, _)) if g == pending.generation => {
                let event = InstanceUnsealed {
                    master_key_generation: g,
                    verification_pattern: vp,
                };
                self.record(actor, correlation_id, &event)
            }
            Some((old, _)) => {
                let rewrapped = self.rewrap_all(old, pending.generation)?;
                let event = MasterKeyRotated {
                    from_generation: old,
                    to_generation: pending.generation,
                    keys_rewrapped: rewrapped,
                    command,
                };
                let receipt = self.record(actor, correlation_id, &event)?;
                self.hsm.retire(&self.instance, old)?;
                Ok(receipt)
            }
            None => {
                let event = MasterKeyActivated {
                    generation: pending.generation,
                    verification_pattern: vp,
                    command,
                };
                self.record(actor, correlation_id, &event)
            }
        }
    }

    /// Re-wraps every stored key version, and the import token's secrets,
    /// from one master-key generation to the next; returns the number of key
    /// versions re-wrapped. Safe to re-run: material already under `to` is
    /// skipped.
    fn rewrap_all(&self, from: u32, to: u32) -> Result<u64, KeyError> {
        let mut count = 0u64;
        for key_id in self.material.keys(&self.instance)? {
            for version in self.material.versions(&self.instance, &key_id)? {
                let Some(wrapped) = self.material.get(&self.instance, &key_id, version)? else {
                    continue;
                };
                if wrapped.mk_generation != from {
                    continue;
                }
                let binding = self.binding(&key_id, version, from);
                let rewrapped = self.hsm.rewrap_material(&binding, &wrapped, to)?;
                self.material
                    .replace(&self.instance, &key_id, version, from, &rewrapped)?;
                self.cache_write().remove(&(key_id.clone(), version));
                count += 1;
            }
        }
        self.rewrap_import_tokens(from, to)?;
        Ok(count)
    }

    /// Whether crypto operations are unavailable (no master key loaded).
    pub fn sealed(&self) -> bool {
        self.current_generation().is_err()
    }
}
