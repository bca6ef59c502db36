//! One instance's master-key registers in the software HSM: ceremony keys
//! per pending generation, the "new" register (parts by owner, then the
//! committed key), and the loaded master keys by generation with the current
//! one. Pure state transitions; `software.rs` does the locking.

use std::collections::BTreeMap;

use aes_gcm::{Aes256Gcm, KeyInit};

use crate::hsm::ceremony::{self, CeremonyKey};
use crate::hsm::{HsmError, MasterKeyStatus, NewRegister, SealedPart};
use crate::secret::SecretBytes;

/// A loaded master key: its expanded cipher (zeroized on drop) and its
/// verification pattern. The raw key bytes are not kept.
pub(super) struct MasterKey {
    pub(super) cipher: Aes256Gcm,
    vp: String,
}

impl MasterKey {
    fn new(key: &SecretBytes) -> Result<Self, HsmError> {
        let cipher = Aes256Gcm::new_from_slice(key.expose())
            .map_err(|_| HsmError::Invalid("master key must be 32 bytes"))?;
        Ok(MasterKey {
            cipher,
            vp: ceremony::master_key_verification_pattern(key),
        })
    }
}

struct NewReg {
    generation: u32,
    /// (owner id, part), in load order; emptied (zeroized) on commit.
    parts: Vec<(String, SecretBytes)>,
    parts_loaded: u8,
    committed: Option<MasterKey>,
}

#[derive(Default)]
pub(super) struct Instance {
    ceremony: BTreeMap<u32, CeremonyKey>,
    new: Option<NewReg>,
    keys: BTreeMap<u32, MasterKey>,
    current: Option<u32>,
}

impl Instance {
    /// The loaded master key of `generation`.
    pub(super) fn key(&self, generation: u32) -> Option<&MasterKey> {
        self.keys.get(&generation)
    }

    /// The current generation and its key.
    pub(super) fn current(&self) -> Option<(u32, &MasterKey)> {
        let generation = self.current?;
        Some((generation, self.keys.get(&generation)?))
    }

    /// A new master key generation must be above every loaded one.
    fn check_loadable(&self, generation: u32) -> Result<(), HsmError> {
        match self.keys.keys().next_back() {
            Some(&top) if generation <= top => Err(HsmError::WrongGeneration {
                expected: top.saturating_add(1),
                got: generation,
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn ceremony_public_key(&mut self, generation: u32) -> Result<[u8; 32], HsmError> {
        self.check_loadable(generation)?;
        if let Some(key) = self.ceremony.get(&generation) {
            return Ok(key.public_key());
        }
        let key = CeremonyKey::generate()?;
        let public = key.public_key();
        self.ceremony.insert(generation, key);
        Ok(public)
    }

    pub(super) fn load_part(
        &mut self,
        instance: &str,
        generation: u32,
        owner_id: &str,
        sealed: &SealedPart,
    ) -> Result<String, HsmError> {
        self.check_loadable(generation)?;
        if let Some(reg) = &self.new {
            if reg.generation != generation {
                return Err(HsmError::WrongGeneration {
                    expected: reg.generation,
                    got: generation,
                });
            }
            if reg.committed.is_some() {
                return Err(HsmError::State("the new register is already committed"));
            }
            if reg.parts.iter().any(|(owner, _)| owner == owner_id) {
                return Err(HsmError::DuplicatePart(owner_id.to_string()));
            }
            if reg.parts_loaded == u8::MAX {
                return Err(HsmError::State("too many master key parts"));
            }
        }
        let key = self.ceremony.get(&generation).ok_or(HsmError::State(
            "no ceremony key for this generation: get the ceremony public key first",
        ))?;
        let part = key.open(instance, generation, owner_id, sealed)?;
        // An all-zero part contributes nothing; a part equal to one already
        // loaded would cancel it out in the XOR.
        let zero = [0u8; ceremony::PART_LEN];
        if crate::secret::ct_eq(part.expose(), &zero) {
            return Err(HsmError::BadPart);
        }
        if let Some(reg) = &self.new
            && reg.parts.iter().any(|(_, p)| *p == part)
        {
            return Err(HsmError::BadPart);
        }
        let vp = ceremony::part_verification_pattern(&part);
        let reg = self.new.get_or_insert_with(|| NewReg {
            generation,
            parts: Vec::new(),
            parts_loaded: 0,
            committed: None,
        });
        reg.parts.push((owner_id.to_string(), part));
        reg.parts_loaded = reg.parts_loaded.saturating_add(1);
        Ok(vp)
    }

    pub(super) fn commit(&mut self, generation: u32, min_parts: u8) -> Result<String, HsmError> {
        let reg = self
            .new
            .as_mut()
            .ok_or(HsmError::State("no master key parts loaded"))?;
        if reg.generation != generation {
            return Err(HsmError::WrongGeneration {
                expected: reg.generation,
                got: generation,
            });
        }
        if reg.committed.is_some() {
            return Err(HsmError::State("the new register is already committed"));
        }
        let needed = min_parts.max(2);
        if reg.parts_loaded < needed {
            return Err(HsmError::NotEnoughParts {
                needed,
                loaded: reg.parts_loaded,
            });
        }
        let parts: Vec<SecretBytes> = reg.parts.iter().map(|(_, p)| p.clone()).collect();
        let key = ceremony::combine_parts(&parts)?;
        drop(parts);
        let master = MasterKey::new(&key)?;
        let vp = master.vp.clone();
        reg.committed = Some(master);
        reg.parts.clear();
        Ok(vp)
    }

    pub(super) fn activate(&mut self, generation: u32) -> Result<(), HsmError> {
        let reg = self.new.as_ref().ok_or(HsmError::State(
            "nothing to activate: load the parts and commit first",
        ))?;
        if reg.generation != generation {
            return Err(HsmError::WrongGeneration {
                expected: reg.generation,
                got: generation,
            });
        }
        if reg.committed.is_none() {
            return Err(HsmError::State(
                "activate before commit: the new register is not committed",
            ));
        }
        self.check_loadable(generation)?;
        let master = self.new.take().and_then(|r| r.committed);
        if let Some(master) = master {
            self.keys.insert(generation, master);
            self.current = Some(generation);
        }
        // Ceremony keys of this and older generations can open nothing useful now.
        self.ceremony.retain(|g, _| *g > generation);
        Ok(())
    }

    /// Destroys the master key of `generation`; returns whether one was loaded.
    pub(super) fn retire(&mut self, generation: u32) -> Result<bool, HsmError> {
        if self.current == Some(generation) {
            return Err(HsmError::State(
                "the current master key cannot be retired (zeroize the instance instead)",
            ));
        }
        Ok(self.keys.remove(&generation).is_some())
    }

    pub(super) fn discard_new(&mut self) {
        self.new = None;
        self.ceremony.clear();
    }

    pub(super) fn status(&self) -> MasterKeyStatus {
        MasterKeyStatus {
            current: self.current().map(|(g, key)| (g, key.vp.clone())),
            new: self.new.as_ref().map(|reg| NewRegister {
                generation: reg.generation,
                parts_loaded: reg.parts_loaded,
                committed: reg.committed.as_ref().map(|k| k.vp.clone()),
            }),
        }
    }
}
