//! HSM backends: where the master key lives and where every operation on
//! key material happens. Three capability traits ([`MasterKeyCeremony`],
//! [`KeyCrypto`], the optional [`LedgerSigning`], over [`HsmDevice`]) whose
//! combination is [`HsmBackend`]; two backends; one conformance suite
//! (`crate::conformance`, feature `conformance`) run against both:
//!
//! - [`software`]: the embedded default, pure Rust, nothing to install. The
//!   master key lives only in process memory; after a restart the instance is
//!   sealed until its key owners resubmit their parts.
//! - `pkcs11` (feature `pkcs11`): any PKCS#11 token, tested against SoftHSM2.
//!   The master key is a sensitive, non-extractable token object; root keys
//!   are unwrapped into session objects for use and never extracted.
//!
//! Key hierarchy: master key (AES-256, per instance, per generation) →
//! key material of each root/standard key version, stored only wrapped under
//! the master key and bound to (instance, key id, version, master-key
//! generation) → data keys (DEKs) wrapped under a key version with AES-256-GCM.
//!
//! Nothing returned by these traits is secret except [`SecretBytes`] values
//! (exported standard-key payloads and unwrapped DEKs), which zeroize on drop
//! and never print.
//!
//! Signing (the instance ledger key, ed25519) is a capability a backend may
//! lack ([`LedgerSigning::supports_signing`]): a signing key must outlive the
//! process, so only a backend with persistent key storage offers it. PKCS#11
//! does (a token key pair); the software HSM keeps nothing across restarts and
//! refuses every signing call with [`HsmError::Unsupported`] (its ledger key
//! is the 0600 key file of `crate::ledger_key`).

pub mod ceremony;
pub mod measured;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod software;

use crate::secret::SecretBytes;

/// Which master-key generation and key version a piece of key material
/// belongs to. Its canonical encoding ([`KeyBinding::aad`]) is the associated
/// data that binds wrapped material to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyBinding {
    pub instance: String,
    pub key_id: String,
    /// Key version number (1 = the first version).
    pub version: u32,
    /// Master-key generation the material is wrapped under.
    pub mk_generation: u32,
}

impl KeyBinding {
    /// Canonical, unambiguous encoding: `"keyledger/v1/key-material" || 0x00 ||
    /// u16be(len(instance)) || instance || u16be(len(key_id)) || key_id ||
    /// u32be(version) || u32be(mk_generation)`.
    pub fn aad(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.instance.len() + self.key_id.len());
        out.extend_from_slice(b"keyledger/v1/key-material\0");
        push_str16(&mut out, &self.instance);
        push_str16(&mut out, &self.key_id);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.mk_generation.to_be_bytes());
        out
    }
}

/// Largest key material either backend wraps, in bytes.
pub const MAX_MATERIAL_LEN: usize = 8192;

/// Names in bindings and ceremonies are length-prefixed with a u16: 1 to
/// 65535 bytes. Shared by every backend.
pub(crate) fn check_name(name: &str, what: &'static str) -> Result<(), HsmError> {
    if name.is_empty() || name.len() > usize::from(u16::MAX) {
        return Err(HsmError::Invalid(what));
    }
    Ok(())
}

pub(crate) fn check_binding(binding: &KeyBinding) -> Result<(), HsmError> {
    check_name(&binding.instance, "instance name must be 1 to 65535 bytes")?;
    check_name(&binding.key_id, "key id must be 1 to 65535 bytes")
}

/// Checks the names of a signing key (instance and label).
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn check_signing_names(instance: &str, label: &str) -> Result<(), HsmError> {
    check_name(instance, "instance name must be 1 to 65535 bytes")?;
    check_name(label, "signing key label must be 1 to 65535 bytes")
}

pub(crate) fn check_material_len(len: usize) -> Result<(), HsmError> {
    if len == 0 || len > MAX_MATERIAL_LEN {
        return Err(HsmError::Invalid("key material must be 1 to 8192 bytes"));
    }
    Ok(())
}

fn push_str16(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

/// Key material wrapped under a master key. Opaque outside the backend that
/// made it; safe to store and to delete (purge = crypto-shredding).
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedMaterial {
    pub mk_generation: u32,
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for WrappedMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WrappedMaterial(gen {}, {} bytes)",
            self.mk_generation,
            self.blob.len()
        )
    }
}

/// A new key version's material, wrapped, with its key check value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMaterial {
    pub wrapped: WrappedMaterial,
    /// Key check value: the first 3 bytes of AES-256-ECB(key, 0^16), hex.
    pub kcv: String,
}

/// A master-key part sealed to the ceremony public key (see [`ceremony`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPart {
    /// HPKE encapsulated key.
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the 32-byte part.
    pub ciphertext: Vec<u8>,
}

/// State of an instance's master-key registers in a backend.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MasterKeyStatus {
    /// Generation and verification pattern of the current (active) master key.
    pub current: Option<(u32, String)>,
    /// The "new" register: generation, parts loaded, and the verification
    /// pattern once committed.
    pub new: Option<NewRegister>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegister {
    pub generation: u32,
    pub parts_loaded: u8,
    pub committed: Option<String>,
}

/// Backend errors. Cryptographic failures on use (wrong key, tampered
/// ciphertext, wrong AAD) are the single opaque [`HsmError::Decrypt`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HsmError {
    #[error(
        "instance {0:?} is sealed: its master key is not loaded (key owners must resubmit their parts)"
    )]
    Sealed(String),
    #[error("decryption failed")]
    Decrypt,
    #[error("master key part could not be opened or is not 32 bytes")]
    BadPart,
    #[error("key owner {0:?} already loaded a part for this generation")]
    DuplicatePart(String),
    #[error("master key generation {expected} expected, got {got}")]
    WrongGeneration { expected: u32, got: u32 },
    #[error("master key state does not allow this: {0}")]
    State(&'static str),
    #[error("master key needs at least {needed} parts, {loaded} loaded")]
    NotEnoughParts { needed: u8, loaded: u8 },
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    #[error("no signing key labelled {label:?} for instance {instance:?} in this HSM")]
    NoSigningKey { instance: String, label: String },
    #[error("a signing key labelled {label:?} already exists for instance {instance:?}")]
    SigningKeyExists { instance: String, label: String },
    #[error("not supported by this HSM backend: {0}")]
    Unsupported(&'static str),
    #[error("HSM backend failure: {0}")]
    Backend(String),
}

/// What every HSM capability shares: the backend's name. Each capability
/// trait below extends it, so a caller holding any one of them can say
/// which backend it talks to (metrics, key references, error messages).
pub trait HsmDevice: Send + Sync {
    /// Short backend name (`software`, `pkcs11`).
    fn kind(&self) -> &'static str;
}

/// The master-key capability: the key ceremony (registers "new" and
/// "current") and the life of an instance's master keys. Called by the
/// ceremony and zeroization commands of the key service only.
pub trait MasterKeyCeremony: HsmDevice {
    /// The X25519 public key that key owners seal their parts to for loading
    /// `generation` of `instance`'s master key. Stable until that generation
    /// is activated or discarded.
    fn ceremony_public_key(&self, instance: &str, generation: u32) -> Result<[u8; 32], HsmError>;

    /// Opens a sealed part inside the backend and adds it to the "new"
    /// register of `generation`. Returns the part's verification pattern.
    /// A second part from the same owner is refused.
    fn load_part(
        &self,
        instance: &str,
        generation: u32,
        owner_id: &str,
        part: &SealedPart,
    ) -> Result<String, HsmError>;

    /// Combines the loaded parts (at least `min_parts`, at least 2) into the
    /// new master key; returns its verification pattern.
    fn commit(&self, instance: &str, generation: u32, min_parts: u8) -> Result<String, HsmError>;

    /// Makes the committed new master key current. The previous current key
    /// stays usable for [`KeyCrypto::rewrap_material`] until
    /// [`MasterKeyCeremony::retire`] is called for it.
    fn activate(&self, instance: &str, generation: u32) -> Result<(), HsmError>;

    /// Destroys the master key of `generation` (after rotation re-wrapped everything).
    fn retire(&self, instance: &str, generation: u32) -> Result<(), HsmError>;

    /// Clears the "new" register (an abandoned ceremony).
    fn discard_new(&self, instance: &str) -> Result<(), HsmError>;

    /// Destroys every master key and register of the instance.
    fn zeroize(&self, instance: &str) -> Result<(), HsmError>;

    /// The instance's registers: the current master key and the new one, if any.
    fn master_key_status(&self, instance: &str) -> Result<MasterKeyStatus, HsmError>;
}

/// The crypto capability: every operation on key material under a loaded
/// master key (generate, import, export, re-wrap) and the data-key envelope
/// under a key version, plus the backend's RNG. Called by the key
/// service's key-version, envelope and rotation paths and by import tokens.
pub trait KeyCrypto: HsmDevice {
    /// True when every key operation (encrypt, decrypt, random) finishes in
    /// memory without waiting on a device, a session or I/O, so an async
    /// server may call it on its event loop. Backends that talk to a token
    /// keep the default, and their calls go to a blocking pool.
    fn calls_are_immediate(&self) -> bool {
        false
    }

    /// Fills `out` with random bytes from the backend's RNG.
    fn random(&self, out: &mut [u8]) -> Result<(), HsmError>;

    // ---- key material under the current master key ----

    /// Generates `len` bytes of key material (32 for AES-256) for `binding`.
    fn generate_key(&self, binding: &KeyBinding, len: usize) -> Result<NewMaterial, HsmError>;

    /// Wraps caller-supplied key material (imported keys).
    fn import_key(
        &self,
        binding: &KeyBinding,
        material: &SecretBytes,
    ) -> Result<NewMaterial, HsmError>;

    /// Returns the plaintext of a standard key's material (policy is
    /// enforced by the caller; root keys are never exported).
    fn export_key(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<SecretBytes, HsmError>;

    /// Re-wraps material from `binding.mk_generation` to `to_generation`
    /// (master-key rotation); both master keys must be loaded.
    fn rewrap_material(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        to_generation: u32,
    ) -> Result<WrappedMaterial, HsmError>;

    // ---- data-key envelope (AES-256-GCM under a key version) ----

    /// Encrypts `plaintext` under the key version; returns `nonce(12) || ciphertext || tag(16)`.
    fn encrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError>;

    /// Decrypts what [`KeyCrypto::encrypt`] returned; any change fails with
    /// [`HsmError::Decrypt`].
    fn decrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<SecretBytes, HsmError>;
}

/// The optional signing capability: Ed25519 key pairs that outlive the
/// process (instance ledger keys). Called only through
/// [`crate::signer::HsmSigner`] and the ledger's key device. A backend
/// without persistent key storage implements it by refusing
/// ([`LedgerSigning::supports_signing`] is false, every call
/// [`HsmError::Unsupported`]).
pub trait LedgerSigning: HsmDevice {
    /// Whether this backend holds ed25519 signing keys that survive a
    /// restart. If not, every signing method fails with
    /// [`HsmError::Unsupported`].
    fn supports_signing(&self) -> bool;

    /// Generates an ed25519 key pair inside the backend, named `label` within
    /// `instance`, whose private key never leaves it; returns the 32-byte
    /// public key. A label already used for the instance is refused
    /// ([`HsmError::SigningKeyExists`]).
    fn generate_signing_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError>;

    /// The public key of an existing signing key
    /// ([`HsmError::NoSigningKey`] if the instance has none of that label).
    fn signing_public_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError>;

    /// Signs `message` with the key (pure Ed25519, RFC 8032 section 5.1:
    /// no pre-hash, no context).
    fn sign(&self, instance: &str, label: &str, message: &[u8]) -> Result<[u8; 64], HsmError>;

    /// Destroys the key pair ([`HsmError::NoSigningKey`] if there is none).
    /// Not part of [`MasterKeyCeremony::zeroize`], which shreds master keys
    /// only: the ledger key must still sign the events that record a
    /// zeroization.
    fn destroy_signing_key(&self, instance: &str, label: &str) -> Result<(), HsmError>;
}

/// A whole HSM backend: all three capabilities. Implemented for every type
/// that has them (a blanket impl), so a backend implements the capability
/// traits and is an `HsmBackend` without more; `Arc<dyn HsmBackend>` is
/// what the key service, the server and the CLI hold. Its methods are
/// callable on `dyn HsmBackend` without importing the capability traits;
/// on a concrete backend, import them (or [`prelude`]).
pub trait HsmBackend: MasterKeyCeremony + KeyCrypto + LedgerSigning {}

impl<T: MasterKeyCeremony + KeyCrypto + LedgerSigning + ?Sized> HsmBackend for T {}

/// The HSM traits, for `use keyledger_kms::hsm::prelude::*` where methods
/// are called on a concrete backend.
pub mod prelude {
    pub use super::{HsmBackend, HsmDevice, KeyCrypto, LedgerSigning, MasterKeyCeremony};
}
