//! PKCS#11 backend (feature `pkcs11`), tested against SoftHSM2.
//! `docs/HSM.md` ("PKCS#11") describes objects, mechanisms and restart.
//!
//! - The master key of each (instance, generation) is an AES-256 token
//!   object: sensitive, non-extractable, usable only for `C_DeriveKey`. It is
//!   created with `C_CreateObject` from the XOR of the ceremony's parts, which
//!   exist in process memory only while they are checked and combined (see
//!   [`registers`]). Being a token object, it survives a restart: an instance
//!   on PKCS#11 is not sealed after `Pkcs11Hsm::open`.
//! - Key material is generated in the token (or imported) as a session
//!   object and leaves it only wrapped (`CKM_AES_KEY_WRAP_PAD`) under a KEK
//!   derived from the master key for exactly one [`KeyBinding`]
//!   (`CKM_AES_CBC_ENCRYPT_DATA` over a SHA-256 of `binding.aad()` and the
//!   blob header, see [`objects::derive_kek`]).
//! - Data keys are sealed with `CKM_AES_GCM` by an unwrapped, sensitive,
//!   non-extractable session object, cached per binding ([`cache`]).
//! - Ledger keys are Ed25519 token key pairs (`CKM_EC_EDWARDS_KEY_PAIR_GEN`,
//!   private half sensitive and non-extractable) that sign with `CKM_EDDSA`
//!   ([`signing`]); they survive a restart like master keys.

mod cache;
mod lifecycle;
mod master_key;
mod objects;
mod pool;
mod registers;
mod signing;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use cryptoki::context::Pkcs11;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

pub use objects::KeyObjectInfo;
pub use signing::object_id as signing_key_object_id;

use self::cache::{CacheKey, CachedKey, KeyCache};
use self::master_key::{MasterKeyObject, Register};
use self::objects::{Kind, TempKey, Use};
use self::pool::SessionPool;
use self::registers::Registers;
use self::signing::SigningKeys;
use super::{
    HsmDevice, HsmError, KeyBinding, KeyCrypto, LedgerSigning, MasterKeyCeremony, MasterKeyStatus,
    NewMaterial, SealedPart, WrappedMaterial, ceremony,
};
use crate::hsm::{check_binding, check_material_len, check_signing_names};
use crate::secret::SecretBytes;

/// Default number of unwrapped key-version objects cached per `Pkcs11Hsm`.
pub const DEFAULT_KEY_CACHE_CAPACITY: usize = 4096;

/// Where the token is and how to log in.
#[derive(Debug)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module_path: PathBuf,
    /// `CKA_LABEL` of the token (`softhsm2-util --init-token --label`).
    pub token_label: String,
    /// The token's user PIN (zeroized on drop, never printed).
    pub user_pin: SecretBytes,
    /// Logged-in R/W sessions operations borrow (about one per core).
    pub pool_size: usize,
    /// Unwrapped key-version objects cached (session objects in the token).
    pub key_cache_capacity: usize,
}

impl Pkcs11Config {
    /// A config with one session per available core.
    pub fn new(
        module_path: impl Into<PathBuf>,
        token_label: impl Into<String>,
        user_pin: SecretBytes,
    ) -> Self {
        let pool_size = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pkcs11Config {
            module_path: module_path.into(),
            token_label: token_label.into(),
            user_pin,
            pool_size,
            key_cache_capacity: DEFAULT_KEY_CACHE_CAPACITY,
        }
    }
}

/// The PKCS#11 [`HsmBackend`](crate::hsm::HsmBackend).
pub struct Pkcs11Hsm {
    token_label: String,
    cache: KeyCache,
    registers: Mutex<Registers>,
    /// Read-held from unwrapping a key version to caching it, write-held by
    /// retire/zeroize while they destroy master keys and purge the cache, so
    /// no key of a destroyed master key is cached after them.
    lifecycle: RwLock<()>,
    /// Cached handles of the token's signing keys.
    signing: SigningKeys,
    /// Dropping the pool closes its sessions, which destroys every session
    /// object (cached key versions) in the token.
    pool: SessionPool,
    _module: Pkcs11,
}

impl std::fmt::Debug for Pkcs11Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Hsm(token {:?})", self.token_label)
    }
}

/// A cryptoki error as a backend error: the function and return value only.
pub(super) fn p11_err(e: &cryptoki::error::Error) -> HsmError {
    match e {
        cryptoki::error::Error::Pkcs11(rv, func) => {
            HsmError::Backend(format!("PKCS#11 {func}: {rv:?}"))
        }
        other => HsmError::Backend(format!("PKCS#11: {other}")),
    }
}

impl Pkcs11Hsm {
    /// Loads the module (once per process), finds the token by label, opens
    /// `pool_size` sessions and logs in. Master keys already on the token are
    /// found by label on use: nothing needs reloading after a restart.
    pub fn open(config: Pkcs11Config) -> Result<Self, HsmError> {
        let module = pool::module(&config.module_path)?;
        let slot = pool::find_slot(&module, &config.token_label)?;
        let pool = SessionPool::open(&module, slot, &config.user_pin, config.pool_size)?;
        Ok(Pkcs11Hsm {
            token_label: config.token_label,
            cache: KeyCache::new(config.key_cache_capacity),
            registers: Mutex::new(Registers::new()),
            lifecycle: RwLock::new(()),
            signing: SigningKeys::default(),
            pool,
            _module: module,
        })
    }

    /// Attributes of the master-key object of (instance, generation).
    pub fn master_key_object_info(
        &self,
        instance: &str,
        generation: u32,
    ) -> Result<KeyObjectInfo, HsmError> {
        self.pool
            .with(|s| match master_key::find(s, instance, generation)? {
                Some(mk) => objects::inspect(s, mk.handle),
                None => Err(HsmError::State("no such master key")),
            })
    }

    /// Attributes of the object that encrypts and decrypts under a key
    /// version (unwrapping it if it is not cached).
    pub fn key_object_info(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<KeyObjectInfo, HsmError> {
        self.pool.with(|s| {
            let key = self.operating_key(s, binding, wrapped)?;
            objects::inspect(s, key.0)
        })
    }

    /// Attributes of the private half of a signing key pair.
    pub fn signing_key_object_info(
        &self,
        instance: &str,
        label: &str,
    ) -> Result<KeyObjectInfo, HsmError> {
        check_signing_names(instance, label)?;
        self.pool.with(|s| {
            let handle = self.signing.private_handle(s, instance, label)?;
            objects::inspect(s, handle)
        })
    }

    /// Number of unwrapped key objects cached.
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
    }

    /// A loaded (current or previous, not retired) master key: the one key
    /// material of `generation` is wrapped under. Missing: the instance is
    /// sealed for that generation.
    fn loaded_master_key(
        &self,
        s: &Session,
        instance: &str,
        generation: u32,
    ) -> Result<MasterKeyObject, HsmError> {
        match master_key::find(s, instance, generation)? {
            Some(mk) if mk.register != Register::New => Ok(mk),
            _ => Err(HsmError::Sealed(instance.to_string())),
        }
    }

    /// Refuses new material for anything but the current master key.
    fn check_current(&self, s: &Session, binding: &KeyBinding) -> Result<(), HsmError> {
        check_binding(binding)?;
        let all = master_key::list(s, &binding.instance)?;
        match master_key::current(&all) {
            None => Err(HsmError::Sealed(binding.instance.clone())),
            Some(mk) if mk.generation != binding.mk_generation => Err(HsmError::WrongGeneration {
                expected: mk.generation,
                got: binding.mk_generation,
            }),
            Some(_) => Ok(()),
        }
    }

    /// Wraps `key` for `binding` under its master key.
    fn wrap_for(
        &self,
        s: &Session,
        binding: &KeyBinding,
        key: ObjectHandle,
        kind: Kind,
    ) -> Result<WrappedMaterial, HsmError> {
        let mk = self.loaded_master_key(s, &binding.instance, binding.mk_generation)?;
        let kek = objects::derive_kek(s, mk.handle, binding, kind)?;
        let blob = objects::wrap(s, kek.handle, key, kind)?;
        Ok(WrappedMaterial {
            mk_generation: binding.mk_generation,
            blob,
        })
    }

    /// Unwraps material into a session object for `usage`.
    fn unwrap_for<'s>(
        &self,
        s: &'s Session,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        usage: Use,
    ) -> Result<TempKey<'s>, HsmError> {
        check_binding(binding)?;
        let mk = self.loaded_master_key(s, &binding.instance, binding.mk_generation)?;
        if wrapped.mk_generation != binding.mk_generation {
            return Err(HsmError::Decrypt);
        }
        let (kind, _) = Kind::parse(&wrapped.blob)?;
        let kek = objects::derive_kek(s, mk.handle, binding, kind)?;
        Ok(TempKey::new(
            s,
            objects::unwrap(s, kek.handle, &wrapped.blob, usage)?,
        ))
    }

    /// The cached operating object of a key version, unwrapping it on a miss.
    fn operating_key(
        &self,
        s: &Session,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<Arc<CachedKey>, HsmError> {
        let key = CacheKey::new(binding, wrapped);
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        if !Kind::parse(&wrapped.blob)?.0.is_aes() {
            // Authentic generic-secret material is not an AES key; a blob
            // whose type byte was changed does not unwrap.
            self.unwrap_for(s, binding, wrapped, Use::Rewrap)?;
            return Err(HsmError::Invalid("key material is not an AES-256 key"));
        }
        let _lifecycle = self
            .lifecycle
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let handle = self.unwrap_for(s, binding, wrapped, Use::Operate)?.keep();
        let entry = self.cache.insert(key, handle);
        self.sweep(s);
        Ok(entry)
    }

    /// Destroys evicted cache objects nobody uses any more.
    fn sweep(&self, s: &Session) {
        for h in self.cache.take_unused() {
            let _ = s.destroy_object(h);
        }
    }

    /// KCV and wrapped form of fresh material (`kcv`: computed by the
    /// caller for non-AES payloads, by the token for AES-256 keys).
    fn new_material(
        &self,
        s: &Session,
        binding: &KeyBinding,
        key: TempKey<'_>,
        kind: Kind,
        kcv: Option<String>,
    ) -> Result<NewMaterial, HsmError> {
        let kcv = match kcv {
            Some(k) => k,
            None => objects::kcv(s, key.handle)?,
        };
        let wrapped = self.wrap_for(s, binding, key.handle, kind)?;
        Ok(NewMaterial { wrapped, kcv })
    }
}

/// A new generation must be above every loaded (current or previous) one.
fn check_loadable(all: &[MasterKeyObject], generation: u32) -> Result<(), HsmError> {
    let top = all
        .iter()
        .filter(|mk| mk.register != Register::New)
        .map(|mk| mk.generation)
        .max();
    match top {
        Some(top) if generation <= top => Err(HsmError::WrongGeneration {
            expected: top.saturating_add(1),
            got: generation,
        }),
        _ => Ok(()),
    }
}

/// The committed, not yet active master key (the "new" register on the token).
fn committed_new(all: &[MasterKeyObject]) -> Option<&MasterKeyObject> {
    all.iter().rev().find(|mk| mk.register == Register::New)
}

impl HsmDevice for Pkcs11Hsm {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }
}

impl MasterKeyCeremony for Pkcs11Hsm {
    fn ceremony_public_key(&self, instance: &str, generation: u32) -> Result<[u8; 32], HsmError> {
        self.ceremony_public_key_impl(instance, generation)
    }

    fn load_part(
        &self,
        instance: &str,
        generation: u32,
        owner_id: &str,
        part: &SealedPart,
    ) -> Result<String, HsmError> {
        self.load_part_impl(instance, generation, owner_id, part)
    }

    fn commit(&self, instance: &str, generation: u32, min_parts: u8) -> Result<String, HsmError> {
        self.commit_impl(instance, generation, min_parts)
    }

    fn activate(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        self.activate_impl(instance, generation)
    }

    fn retire(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        self.retire_impl(instance, generation)
    }

    fn discard_new(&self, instance: &str) -> Result<(), HsmError> {
        self.discard_new_impl(instance)
    }

    fn zeroize(&self, instance: &str) -> Result<(), HsmError> {
        self.zeroize_impl(instance)
    }

    fn master_key_status(&self, instance: &str) -> Result<MasterKeyStatus, HsmError> {
        self.master_key_status_impl(instance)
    }
}

impl KeyCrypto for Pkcs11Hsm {
    fn random(&self, out: &mut [u8]) -> Result<(), HsmError> {
        if out.is_empty() {
            return Ok(());
        }
        self.pool
            .with(|s| s.generate_random_slice(out).map_err(|e| p11_err(&e)))
    }

    fn generate_key(&self, binding: &KeyBinding, len: usize) -> Result<NewMaterial, HsmError> {
        check_material_len(len)?;
        if !Kind::of_len(len).is_aes() {
            // Opaque payloads (not AES-256 keys): random bytes from the token
            // imported like a caller's, so their (BLAKE3) KCV can be computed.
            let mut bytes = vec![0u8; len];
            self.random(&mut bytes)?;
            return self.import_key(binding, &SecretBytes::new(bytes));
        }
        self.pool.with(|s| {
            self.check_current(s, binding)?;
            let key = TempKey::new(s, objects::generate_aes256(s)?);
            self.new_material(s, binding, key, Kind::Aes256, None)
        })
    }

    fn import_key(
        &self,
        binding: &KeyBinding,
        material: &SecretBytes,
    ) -> Result<NewMaterial, HsmError> {
        check_material_len(material.len())?;
        // AES-256 keys: the token computes the KCV; other payloads: BLAKE3-based,
        // computed here from the caller's bytes.
        let kind = Kind::of_len(material.len());
        let kcv = (!kind.is_aes()).then(|| ceremony::kcv(material.expose()));
        self.pool.with(|s| {
            self.check_current(s, binding)?;
            let key = TempKey::new(s, objects::import(s, material)?);
            self.new_material(s, binding, key, kind, kcv)
        })
    }

    fn export_key(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<SecretBytes, HsmError> {
        self.pool.with(|s| {
            let key = self.unwrap_for(s, binding, wrapped, Use::Export)?;
            let (kind, _) = Kind::parse(&wrapped.blob)?;
            objects::read_value(s, key.handle, kind)
        })
    }

    fn rewrap_material(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        to_generation: u32,
    ) -> Result<WrappedMaterial, HsmError> {
        let target = KeyBinding {
            mk_generation: to_generation,
            ..binding.clone()
        };
        self.pool.with(|s| {
            self.loaded_master_key(s, &target.instance, to_generation)?;
            let key = self.unwrap_for(s, binding, wrapped, Use::Rewrap)?;
            let (kind, _) = Kind::parse(&wrapped.blob)?;
            self.wrap_for(s, &target, key.handle, kind)
        })
    }

    fn encrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.pool.with(|s| {
            let key = self.operating_key(s, binding, wrapped)?;
            objects::gcm_encrypt(s, key.0, plaintext.expose(), aad)
        })
    }

    fn decrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<SecretBytes, HsmError> {
        if sealed.len() < objects::IV_LEN + objects::TAG_LEN {
            return Err(HsmError::Decrypt);
        }
        self.pool.with(|s| {
            let key = self.operating_key(s, binding, wrapped)?;
            objects::gcm_decrypt(s, key.0, sealed, aad)
        })
    }
}

impl LedgerSigning for Pkcs11Hsm {
    fn supports_signing(&self) -> bool {
        true
    }

    fn generate_signing_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError> {
        check_signing_names(instance, label)?;
        self.pool
            .with(|s| self.signing.generate(s, instance, label))
    }

    fn signing_public_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError> {
        check_signing_names(instance, label)?;
        self.pool
            .with(|s| self.signing.public_key(s, instance, label))
    }

    fn sign(&self, instance: &str, label: &str, message: &[u8]) -> Result<[u8; 64], HsmError> {
        check_signing_names(instance, label)?;
        self.pool
            .with(|s| self.signing.sign(s, instance, label, message))
    }

    fn destroy_signing_key(&self, instance: &str, label: &str) -> Result<(), HsmError> {
        check_signing_names(instance, label)?;
        self.pool.with(|s| self.signing.destroy(s, instance, label))
    }
}
