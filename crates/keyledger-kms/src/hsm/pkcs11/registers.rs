//! The in-process half of an instance's master-key registers: the ceremony
//! key pairs of pending generations and the "new" register's parts until
//! `commit` turns them into a token object.
//!
//! Parts are kept as they arrived, sealed to the ceremony key. They are
//! opened in process memory twice, briefly: at load (to check the part and
//! compute its verification pattern) and at commit (to combine them), and
//! zeroized right after each time. The ceremony X25519 private keys live in
//! process memory (SoftHSM2 cannot run HPKE).

use std::collections::{BTreeMap, HashMap};

use crate::hsm::ceremony::{self, CeremonyKey};
use crate::hsm::{HsmError, SealedPart};
use crate::secret::{SecretBytes, ct_eq};

/// Parts loaded into the "new" register, not yet committed.
pub(super) struct PendingParts {
    pub(super) generation: u32,
    /// (owner, sealed part, the part's verification pattern), in load order.
    parts: Vec<(String, SealedPart, String)>,
}

impl PendingParts {
    pub(super) fn loaded(&self) -> u8 {
        u8::try_from(self.parts.len()).unwrap_or(u8::MAX)
    }
}

#[derive(Default)]
pub(super) struct InstanceRegisters {
    ceremony: BTreeMap<u32, CeremonyKey>,
    pub(super) pending: Option<PendingParts>,
}

impl InstanceRegisters {
    pub(super) fn ceremony_public_key(&mut self, generation: u32) -> Result<[u8; 32], HsmError> {
        if let Some(key) = self.ceremony.get(&generation) {
            return Ok(key.public_key());
        }
        let key = CeremonyKey::generate()?;
        let public = key.public_key();
        self.ceremony.insert(generation, key);
        Ok(public)
    }

    /// Opens and checks a part, returns its verification pattern and keeps
    /// the sealed form. The caller checked the generation against the token.
    pub(super) fn load(
        &mut self,
        instance: &str,
        generation: u32,
        owner: &str,
        sealed: &SealedPart,
    ) -> Result<String, HsmError> {
        if let Some(p) = &self.pending {
            if p.generation != generation {
                return Err(HsmError::WrongGeneration {
                    expected: p.generation,
                    got: generation,
                });
            }
            if p.parts.iter().any(|(o, _, _)| o == owner) {
                return Err(HsmError::DuplicatePart(owner.to_string()));
            }
            if p.parts.len() >= usize::from(u8::MAX) {
                return Err(HsmError::State("too many master key parts"));
            }
        }
        let key = self.ceremony.get(&generation).ok_or(HsmError::State(
            "no ceremony key for this generation: get the ceremony public key first",
        ))?;
        let part = key.open(instance, generation, owner, sealed)?;
        // An all-zero part contributes nothing; a part equal to one already
        // loaded (same verification pattern) would cancel it out in the XOR.
        if ct_eq(part.expose(), &[0u8; ceremony::PART_LEN]) {
            return Err(HsmError::BadPart);
        }
        let pattern = ceremony::part_verification_pattern(&part);
        drop(part);
        let pending = self.pending.get_or_insert_with(|| PendingParts {
            generation,
            parts: Vec::new(),
        });
        if pending
            .parts
            .iter()
            .any(|(_, _, vp)| ct_eq(vp.as_bytes(), pattern.as_bytes()))
        {
            return Err(HsmError::BadPart);
        }
        pending
            .parts
            .push((owner.to_string(), sealed.clone(), pattern.clone()));
        Ok(pattern)
    }

    /// Opens every pending part and combines them into the master key.
    pub(super) fn combine(&self, instance: &str) -> Result<SecretBytes, HsmError> {
        let pending = self
            .pending
            .as_ref()
            .ok_or(HsmError::State("no master key parts loaded"))?;
        let key = self
            .ceremony
            .get(&pending.generation)
            .ok_or(HsmError::State("no ceremony key for this generation"))?;
        let mut opened = Vec::with_capacity(pending.parts.len());
        for (owner, sealed, _) in &pending.parts {
            opened.push(key.open(instance, pending.generation, owner, sealed)?);
        }
        ceremony::combine_parts(&opened)
        // `opened` (SecretBytes) is zeroized as it drops here.
    }

    /// After activation of `generation`: older ceremony keys open nothing useful.
    pub(super) fn activated(&mut self, generation: u32) {
        self.pending = None;
        self.ceremony.retain(|g, _| *g > generation);
    }

    pub(super) fn committed(&mut self) {
        self.pending = None;
    }

    pub(super) fn discard(&mut self) {
        self.pending = None;
        self.ceremony.clear();
    }
}

/// Registers by instance.
pub(super) type Registers = HashMap<String, InstanceRegisters>;
