//! Who signs an instance's records and checkpoints. The [`LedgerSigner`]
//! abstraction and the key-file signer live in `keyledger_ledger` (see
//! `keyledger_ledger::ledger_key`); this module re-exports them and adds
//! the HSM-held signer, built on the HSM's signing capability
//! ([`LedgerSigning`]):
//!
//! - [`HsmSigner`]: an Ed25519 key pair inside an HSM backend that supports
//!   signing (PKCS#11); every signature is one backend call, made through the
//!   backend's sessions, and checked against the public key before use.
//! - `impl KeyDevice for dyn LedgerSigning`: how an instance ledger
//!   ([`crate::ledger::Ledger`]) makes and reopens its key in an HSM.
//!
//! Both signers sign exactly the messages of `docs/LEDGER-FORMAT.md`
//! (sections 3 and 6), and a key's id and note verifier key derive from its
//! public key only, so a log signed in an HSM verifies like one signed with
//! a key file.

use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::hsm::{HsmDevice, HsmError, LedgerSigning};
use keyledger_core::checkpoint::NoteVerifierKey;

pub use keyledger_ledger::signer::{LedgerSigner, SignError};

impl From<HsmError> for SignError {
    fn from(e: HsmError) -> Self {
        SignError::Device(e.to_string())
    }
}

/// The HSM backends as the ledger's key devices: a ledger key lives in a
/// backend that supports signing, as a non-extractable key pair. Only the
/// signing capability is needed; an `Arc<dyn LedgerSigning>` coerces to it.
impl keyledger_ledger::ledger::KeyDevice for dyn LedgerSigning {
    type Error = HsmError;

    fn kind(&self) -> &str {
        HsmDevice::kind(self)
    }

    fn check_can_hold_keys(&self) -> Result<(), HsmError> {
        if self.supports_signing() {
            Ok(())
        } else {
            Err(HsmError::Unsupported(
                "this HSM backend cannot hold a ledger key (no signing capability); \
                 keep the ledger key in a key file",
            ))
        }
    }

    fn generate_signer(
        device: &Arc<Self>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Arc<dyn LedgerSigner>, HsmError> {
        Ok(Arc::new(HsmSigner::generate(
            device.clone(),
            instance,
            label,
            name,
        )?))
    }

    fn open_signer(
        device: &Arc<Self>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Arc<dyn LedgerSigner>, HsmError> {
        Ok(Arc::new(HsmSigner::open(
            device.clone(),
            instance,
            label,
            name,
        )?))
    }
}

impl From<HsmSigner> for Arc<dyn LedgerSigner> {
    fn from(key: HsmSigner) -> Self {
        Arc::new(key)
    }
}

/// A ledger key held in an HSM backend as (instance, label).
pub struct HsmSigner {
    hsm: Arc<dyn LedgerSigning>,
    instance: String,
    label: String,
    name: String,
    public: VerifyingKey,
    key_id: String,
}

impl std::fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HsmSigner({} in {} as {:?}/{:?})",
            self.key_id,
            self.hsm.kind(),
            self.instance,
            self.label
        )
    }
}

impl HsmSigner {
    /// Generates a new key pair labelled `label` for `instance` in `hsm`.
    /// `name` is the note signer name (the checkpoint origin).
    pub fn generate(
        hsm: Arc<dyn LedgerSigning>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Self, HsmError> {
        let public = hsm.generate_signing_key(instance, label)?;
        Self::with_public(hsm, instance, label, name, &public)
    }

    /// The existing key pair labelled `label` for `instance` in `hsm`.
    pub fn open(
        hsm: Arc<dyn LedgerSigning>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Self, HsmError> {
        let public = hsm.signing_public_key(instance, label)?;
        Self::with_public(hsm, instance, label, name, &public)
    }

    fn with_public(
        hsm: Arc<dyn LedgerSigning>,
        instance: &str,
        label: &str,
        name: &str,
        public: &[u8; 32],
    ) -> Result<Self, HsmError> {
        let public = VerifyingKey::from_bytes(public).map_err(|_| {
            HsmError::Backend("the HSM returned an invalid Ed25519 public key".into())
        })?;
        if public.is_weak() {
            return Err(HsmError::Backend(
                "the HSM returned a small-order Ed25519 public key".into(),
            ));
        }
        let key_id = hex::encode(NoteVerifierKey::new(name, public).key_id());
        Ok(HsmSigner {
            hsm,
            instance: instance.to_string(),
            label: label.to_string(),
            name: name.to_string(),
            public,
            key_id,
        })
    }

    /// The instance the key belongs to in the HSM.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The key's label within the instance in the HSM.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The backend holding the key (its signing capability).
    pub fn backend(&self) -> &Arc<dyn LedgerSigning> {
        &self.hsm
    }
}

impl LedgerSigner for HsmSigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// Signs in the HSM, then checks the signature (strict RFC 8032) so a
    /// faulty or substituted token can never put an unverifiable record in
    /// the log.
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let signature = self.hsm.sign(&self.instance, &self.label, message)?;
        self.public
            .verify_strict(message, &Signature::from_bytes(&signature))
            .map_err(|_| SignError::BadSignature {
                key_id: self.key_id.clone(),
            })?;
        Ok(signature)
    }

    fn location(&self) -> String {
        format!("hsm:{}", self.hsm.kind())
    }

    fn key_id_hex(&self) -> String {
        self.key_id.clone()
    }
}
