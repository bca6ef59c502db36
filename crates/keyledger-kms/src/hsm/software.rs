//! The software HSM: the embedded default backend, pure Rust.
//!
//! Everything lives in process memory and nothing is ever written to disk:
//! per instance, the ceremony X25519 keys of pending generations, the "new"
//! register and the loaded master keys (as expanded AES-256-GCM ciphers,
//! zeroized on drop). After a restart every instance is sealed
//! ([`HsmError::Sealed`]) until its key owners load their parts again and
//! the caller commits and activates the generation the log names.
//!
//! - Key material of a key version: `nonce(12) || AES-256-GCM(MK_gen,
//!   material, aad = binding.aad()) || tag(16)` ([`envelope`]).
//! - `encrypt`/`decrypt`: the same envelope under the key version's
//!   material, with the caller's AAD. The unwrapped, key-expanded cipher is
//!   cached per exact (binding, wrapped blob) in a bounded, sharded cache
//!   (`cache.rs`), so the hot path is one shard read lock and one AES-GCM.
//! - Signing keys: not offered ([`LedgerSigning::supports_signing`] is false).
//!   A key kept only in memory would be gone after a restart, and with it
//!   the only key that may sign the log's next record or its rotation; the
//!   software path for the ledger key is the 0600 key file
//!   (`crate::ledger_key::LedgerKey`).

mod cache;
pub mod envelope;
mod registers;

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aes_gcm::{Aes256Gcm, KeyInit};

use self::cache::{CipherCache, Entry};
use self::registers::Instance;
use super::{
    HsmDevice, HsmError, KeyBinding, KeyCrypto, LedgerSigning, MasterKeyCeremony, MasterKeyStatus,
    NewMaterial, SealedPart, WrappedMaterial,
};
use crate::hsm::ceremony;
use crate::hsm::{check_binding, check_material_len, check_name};
use crate::secret::SecretBytes;

/// Default number of cached data-key ciphers.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;
/// Largest key material `generate_key`/`import_key` accept (bytes).
pub use super::MAX_MATERIAL_LEN;

/// The embedded software HSM. See the module documentation.
pub struct SoftwareHsm {
    instances: RwLock<HashMap<String, Instance>>,
    cache: CipherCache,
}

impl std::fmt::Debug for SoftwareHsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.instances.read().map(|m| m.len()).unwrap_or(0);
        write!(
            f,
            "SoftwareHsm({n} instances, {} cached ciphers)",
            self.cache.len()
        )
    }
}

impl Default for SoftwareHsm {
    fn default() -> Self {
        Self::new()
    }
}

fn poisoned<T>(_: PoisonError<T>) -> HsmError {
    HsmError::Backend("software HSM state lock poisoned".into())
}

fn sealed(instance: &str) -> HsmError {
    HsmError::Sealed(instance.to_string())
}

impl SoftwareHsm {
    pub fn new() -> Self {
        Self::with_cache_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// A software HSM caching at most about `capacity` data-key ciphers
    /// (0: unwrap the material on every call).
    pub fn with_cache_capacity(capacity: usize) -> Self {
        SoftwareHsm {
            instances: RwLock::new(HashMap::new()),
            cache: CipherCache::new(capacity),
        }
    }

    /// Number of data-key ciphers currently cached.
    pub fn cached_ciphers(&self) -> usize {
        self.cache.len()
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, HashMap<String, Instance>>, HsmError> {
        self.instances.read().map_err(poisoned)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, HashMap<String, Instance>>, HsmError> {
        self.instances.write().map_err(poisoned)
    }

    /// Runs `f` on the instance's registers, which must exist.
    fn with_instance<R>(
        &self,
        instance: &str,
        missing: HsmError,
        f: impl FnOnce(&mut Instance) -> Result<R, HsmError>,
    ) -> Result<R, HsmError> {
        let mut map = self.write()?;
        match map.get_mut(instance) {
            Some(inst) => f(inst),
            None => Err(missing),
        }
    }

    /// Wraps material under the current master key, which must be the
    /// binding's generation.
    fn wrap_current(
        &self,
        binding: &KeyBinding,
        material: &SecretBytes,
    ) -> Result<NewMaterial, HsmError> {
        check_binding(binding)?;
        check_material_len(material.len())?;
        let map = self.read()?;
        let inst = map
            .get(&binding.instance)
            .ok_or_else(|| sealed(&binding.instance))?;
        let (generation, mk) = inst.current().ok_or_else(|| sealed(&binding.instance))?;
        if binding.mk_generation != generation {
            return Err(HsmError::WrongGeneration {
                expected: generation,
                got: binding.mk_generation,
            });
        }
        let blob = envelope::seal(&mk.cipher, material.expose(), &binding.aad())?;
        Ok(NewMaterial {
            wrapped: WrappedMaterial {
                mk_generation: generation,
                blob,
            },
            kcv: ceremony::kcv(material.expose()),
        })
    }

    /// Unwraps material with the master key of `binding.mk_generation`.
    fn unwrap_in(
        inst: &Instance,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<SecretBytes, HsmError> {
        let mk = inst
            .key(binding.mk_generation)
            .ok_or_else(|| sealed(&binding.instance))?;
        if wrapped.mk_generation != binding.mk_generation {
            return Err(HsmError::Decrypt);
        }
        envelope::open(&mk.cipher, &wrapped.blob, &binding.aad())
    }

    fn unwrap_material(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<SecretBytes, HsmError> {
        check_binding(binding)?;
        let map = self.read()?;
        let inst = map
            .get(&binding.instance)
            .ok_or_else(|| sealed(&binding.instance))?;
        Self::unwrap_in(inst, binding, wrapped)
    }

    /// Runs `f` with the key version's AES-256-GCM cipher: from the cache,
    /// or unwrapped and then cached.
    fn with_cipher<R>(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        f: impl FnOnce(&Aes256Gcm) -> Result<R, HsmError>,
    ) -> Result<R, HsmError> {
        check_binding(binding)?;
        let f = match self.cache.with(binding, wrapped, f) {
            Ok(result) => return result,
            Err(f) => f,
        };
        // Miss: hold the instance read lock until the entry is cached, so a
        // retire/zeroize (write lock, then purge) cannot be overtaken.
        let map = self.read()?;
        let inst = map
            .get(&binding.instance)
            .ok_or_else(|| sealed(&binding.instance))?;
        let material = Self::unwrap_in(inst, binding, wrapped)?;
        let cipher = Aes256Gcm::new_from_slice(material.expose())
            .map_err(|_| HsmError::Invalid("key material is not an AES-256 key"))?;
        drop(material);
        let result = f(&cipher);
        self.cache
            .insert(Entry::new(binding, wrapped, cipher), wrapped)?;
        result
    }
}

impl HsmDevice for SoftwareHsm {
    fn kind(&self) -> &'static str {
        "software"
    }
}

impl MasterKeyCeremony for SoftwareHsm {
    fn ceremony_public_key(&self, instance: &str, generation: u32) -> Result<[u8; 32], HsmError> {
        check_name(instance, "instance name must be 1 to 65535 bytes")?;
        let mut map = self.write()?;
        map.entry(instance.to_string())
            .or_default()
            .ceremony_public_key(generation)
    }

    fn load_part(
        &self,
        instance: &str,
        generation: u32,
        owner_id: &str,
        part: &SealedPart,
    ) -> Result<String, HsmError> {
        check_name(owner_id, "owner id must be 1 to 65535 bytes")?;
        let missing = HsmError::State(
            "no ceremony key for this generation: get the ceremony public key first",
        );
        self.with_instance(instance, missing, |inst| {
            inst.load_part(instance, generation, owner_id, part)
        })
    }

    fn commit(&self, instance: &str, generation: u32, min_parts: u8) -> Result<String, HsmError> {
        let missing = HsmError::State("no master key parts loaded");
        self.with_instance(instance, missing, |inst| inst.commit(generation, min_parts))
    }

    fn activate(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        let missing = HsmError::State("nothing to activate: load the parts and commit first");
        self.with_instance(instance, missing, |inst| inst.activate(generation))
    }

    fn retire(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        let mut map = self.write()?;
        if let Some(inst) = map.get_mut(instance) {
            inst.retire(generation)?;
        }
        // Still under the write lock: no cipher of this generation can be
        // (re)inserted concurrently.
        self.cache.purge(instance, Some(generation))
    }

    fn discard_new(&self, instance: &str) -> Result<(), HsmError> {
        let mut map = self.write()?;
        if let Some(inst) = map.get_mut(instance) {
            inst.discard_new();
        }
        Ok(())
    }

    fn zeroize(&self, instance: &str) -> Result<(), HsmError> {
        let mut map = self.write()?;
        drop(map.remove(instance));
        self.cache.purge(instance, None)
    }

    fn master_key_status(&self, instance: &str) -> Result<MasterKeyStatus, HsmError> {
        let map = self.read()?;
        Ok(map.get(instance).map(Instance::status).unwrap_or_default())
    }
}

impl KeyCrypto for SoftwareHsm {
    fn calls_are_immediate(&self) -> bool {
        true
    }

    fn random(&self, out: &mut [u8]) -> Result<(), HsmError> {
        getrandom::getrandom(out).map_err(|e| HsmError::Backend(format!("OS RNG: {e}")))
    }

    fn generate_key(&self, binding: &KeyBinding, len: usize) -> Result<NewMaterial, HsmError> {
        check_material_len(len)?;
        let material =
            SecretBytes::random(len).map_err(|e| HsmError::Backend(format!("OS RNG: {e}")))?;
        self.wrap_current(binding, &material)
    }

    fn import_key(
        &self,
        binding: &KeyBinding,
        material: &SecretBytes,
    ) -> Result<NewMaterial, HsmError> {
        self.wrap_current(binding, material)
    }

    fn export_key(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<SecretBytes, HsmError> {
        self.unwrap_material(binding, wrapped)
    }

    fn rewrap_material(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        to_generation: u32,
    ) -> Result<WrappedMaterial, HsmError> {
        check_binding(binding)?;
        let map = self.read()?;
        let inst = map
            .get(&binding.instance)
            .ok_or_else(|| sealed(&binding.instance))?;
        let to = inst
            .key(to_generation)
            .ok_or_else(|| sealed(&binding.instance))?;
        let material = Self::unwrap_in(inst, binding, wrapped)?;
        let to_binding = KeyBinding {
            mk_generation: to_generation,
            ..binding.clone()
        };
        let blob = envelope::seal(&to.cipher, material.expose(), &to_binding.aad())?;
        Ok(WrappedMaterial {
            mk_generation: to_generation,
            blob,
        })
    }

    fn encrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.with_cipher(binding, wrapped, |cipher| {
            envelope::seal(cipher, plaintext.expose(), aad)
        })
    }

    fn decrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<SecretBytes, HsmError> {
        self.with_cipher(binding, wrapped, |cipher| {
            envelope::open(cipher, sealed, aad)
        })
    }
}

impl LedgerSigning for SoftwareHsm {
    fn supports_signing(&self) -> bool {
        false
    }

    fn generate_signing_key(&self, _instance: &str, _label: &str) -> Result<[u8; 32], HsmError> {
        Err(no_signing())
    }

    fn signing_public_key(&self, _instance: &str, _label: &str) -> Result<[u8; 32], HsmError> {
        Err(no_signing())
    }

    fn sign(&self, _instance: &str, _label: &str, _message: &[u8]) -> Result<[u8; 64], HsmError> {
        Err(no_signing())
    }

    fn destroy_signing_key(&self, _instance: &str, _label: &str) -> Result<(), HsmError> {
        Err(no_signing())
    }
}

/// Why the software HSM refuses signing calls.
fn no_signing() -> HsmError {
    HsmError::Unsupported(
        "the software HSM keeps no key across a restart, so it holds no signing keys \
         (its ledger key is a 0600 key file)",
    )
}
