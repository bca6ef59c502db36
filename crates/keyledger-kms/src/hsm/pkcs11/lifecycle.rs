//! The master-key registers on a PKCS#11 token: the ceremony (in process,
//! [`super::registers`]) and the token objects it ends in
//! ([`super::master_key`]): commit, activate, retire, discard, zeroize, status.

use std::sync::PoisonError;

use super::master_key::{self, MasterKeyObject, Register};
use super::pool::lock;
use super::{Pkcs11Hsm, check_loadable, committed_new};
use crate::hsm::check_name;
use crate::hsm::{HsmError, MasterKeyStatus, NewRegister, SealedPart, ceremony};

impl Pkcs11Hsm {
    pub(super) fn ceremony_public_key_impl(
        &self,
        instance: &str,
        generation: u32,
    ) -> Result<[u8; 32], HsmError> {
        check_name(instance, "instance name must be 1 to 65535 bytes")?;
        let mut regs = lock(&self.registers);
        self.pool
            .with(|s| check_loadable(&master_key::list(s, instance)?, generation))?;
        regs.entry(instance.to_string())
            .or_default()
            .ceremony_public_key(generation)
    }

    pub(super) fn load_part_impl(
        &self,
        instance: &str,
        generation: u32,
        owner_id: &str,
        part: &SealedPart,
    ) -> Result<String, HsmError> {
        check_name(owner_id, "owner id must be 1 to 65535 bytes")?;
        let mut regs = lock(&self.registers);
        let Some(inst) = regs.get_mut(instance) else {
            return Err(HsmError::State(
                "no ceremony key for this generation: get the ceremony public key first",
            ));
        };
        self.pool.with(|s| {
            let all = master_key::list(s, instance)?;
            check_loadable(&all, generation)?;
            match committed_new(&all) {
                Some(mk) if mk.generation != generation => Err(HsmError::WrongGeneration {
                    expected: mk.generation,
                    got: generation,
                }),
                Some(_) => Err(HsmError::State("the new register is already committed")),
                None => Ok(()),
            }
        })?;
        inst.load(instance, generation, owner_id, part)
    }

    pub(super) fn commit_impl(
        &self,
        instance: &str,
        generation: u32,
        min_parts: u8,
    ) -> Result<String, HsmError> {
        let mut regs = lock(&self.registers);
        self.pool.with(|s| {
            let all = master_key::list(s, instance)?;
            if let Some(mk) = committed_new(&all) {
                return Err(if mk.generation != generation {
                    HsmError::WrongGeneration {
                        expected: mk.generation,
                        got: generation,
                    }
                } else {
                    HsmError::State("the new register is already committed")
                });
            }
            let inst = regs
                .get_mut(instance)
                .ok_or(HsmError::State("no master key parts loaded"))?;
            let pending = inst
                .pending
                .as_ref()
                .ok_or(HsmError::State("no master key parts loaded"))?;
            if pending.generation != generation {
                return Err(HsmError::WrongGeneration {
                    expected: pending.generation,
                    got: generation,
                });
            }
            let (needed, loaded) = (min_parts.max(2), pending.loaded());
            if loaded < needed {
                return Err(HsmError::NotEnoughParts { needed, loaded });
            }
            check_loadable(&all, generation)?;
            let key = inst.combine(instance)?;
            let pattern = ceremony::master_key_verification_pattern(&key);
            master_key::create(s, instance, generation, loaded, &pattern, &key)?;
            inst.committed();
            Ok(pattern)
        })
    }

    pub(super) fn activate_impl(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        let mut regs = lock(&self.registers);
        self.pool.with(|s| {
            let all = master_key::list(s, instance)?;
            let Some(new) = committed_new(&all) else {
                return Err(match regs.get(instance).and_then(|r| r.pending.as_ref()) {
                    Some(p) if p.generation != generation => HsmError::WrongGeneration {
                        expected: p.generation,
                        got: generation,
                    },
                    Some(_) => {
                        HsmError::State("activate before commit: the new register is not committed")
                    }
                    None => HsmError::State("nothing to activate: load the parts and commit first"),
                });
            };
            if new.generation != generation {
                return Err(HsmError::WrongGeneration {
                    expected: new.generation,
                    got: generation,
                });
            }
            check_loadable(&all, generation)?;
            // New first: an interruption leaves two "current" keys, and the
            // highest generation is the current one.
            master_key::set_register(s, new, Register::Current)?;
            for old in all.iter().filter(|mk| mk.register == Register::Current) {
                master_key::set_register(s, old, Register::Previous)?;
            }
            Ok(())
        })?;
        if let Some(inst) = regs.get_mut(instance) {
            inst.activated(generation);
        }
        Ok(())
    }

    pub(super) fn retire_impl(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        self.pool.with(|s| {
            let all = master_key::list(s, instance)?;
            if master_key::current(&all).is_some_and(|c| c.generation == generation) {
                return Err(HsmError::State(
                    "the current master key cannot be retired (zeroize the instance instead)",
                ));
            }
            let _lifecycle = self
                .lifecycle
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // A committed-but-not-active key is discarded, not retired.
            let active =
                |mk: &&MasterKeyObject| mk.generation == generation && mk.register != Register::New;
            self.cache
                .evict_where(|b, g| b.instance == instance && g == generation);
            self.sweep(s);
            if let Some(mk) = all.iter().find(active) {
                master_key::destroy(s, mk)?;
            }
            Ok(())
        })
    }

    pub(super) fn discard_new_impl(&self, instance: &str) -> Result<(), HsmError> {
        let mut regs = lock(&self.registers);
        if let Some(inst) = regs.get_mut(instance) {
            inst.discard();
        }
        self.pool.with(|s| {
            for mk in master_key::list(s, instance)?
                .iter()
                .filter(|mk| mk.register == Register::New)
            {
                master_key::destroy(s, mk)?;
            }
            Ok(())
        })
    }

    pub(super) fn zeroize_impl(&self, instance: &str) -> Result<(), HsmError> {
        let mut regs = lock(&self.registers);
        regs.remove(instance);
        self.pool.with(|s| {
            let _lifecycle = self
                .lifecycle
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            self.cache.evict_where(|b, _| b.instance == instance);
            self.sweep(s);
            for mk in master_key::list(s, instance)? {
                master_key::destroy(s, &mk)?;
            }
            Ok(())
        })
    }

    pub(super) fn master_key_status_impl(
        &self,
        instance: &str,
    ) -> Result<MasterKeyStatus, HsmError> {
        let regs = lock(&self.registers);
        let all = self.pool.with(|s| master_key::list(s, instance))?;
        let current = master_key::current(&all).map(|mk| (mk.generation, mk.pattern.clone()));
        let pending = regs.get(instance).and_then(|r| r.pending.as_ref());
        let new = match (committed_new(&all), pending) {
            (Some(mk), _) => Some(NewRegister {
                generation: mk.generation,
                parts_loaded: mk.parts,
                committed: Some(mk.pattern.clone()),
            }),
            (None, Some(p)) => Some(NewRegister {
                generation: p.generation,
                parts_loaded: p.loaded(),
                committed: None,
            }),
            (None, None) => None,
        };
        Ok(MasterKeyStatus { current, new })
    }
}
