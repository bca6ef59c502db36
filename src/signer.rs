//! Who signs an instance's records and checkpoints: the [`LedgerSigner`]
//! abstraction over where the ledger key lives.
//!
//! - [`LedgerKey`](crate::ledger_key::LedgerKey): the private key in a 0600
//!   file, signing in process (the writer signs a batch on all cores).
//! - [`HsmSigner`]: an Ed25519 key pair inside an HSM backend that supports
//!   signing (PKCS#11); every signature is one backend call, made through the
//!   backend's sessions, and checked against the public key before use.
//!
//! Both sign exactly the messages of `docs/LEDGER-FORMAT.md` (sections 3 and
//! 6), and a key's id and note verifier key derive from its public key only,
//! so a log signed in an HSM verifies like one signed with a key file.

use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::chain::{self, Link};
use crate::checkpoint::{Checkpoint, NoteVerifierKey};
use crate::hsm::{HsmBackend, HsmError};

/// Why a signature could not be made.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("HSM signing failed: {0}")]
    Hsm(#[from] HsmError),
    #[error("the HSM returned a signature that does not verify under the ledger key {key_id}")]
    BadSignature { key_id: String },
}

/// A ledger key: signs record messages and checkpoint notes of one instance.
///
/// Implementations never print or log private key material.
pub trait LedgerSigner: Send + Sync {
    /// Note signer name (the checkpoint origin, `keyledger/<instance>`).
    fn name(&self) -> &str;

    /// The Ed25519 public key.
    fn verifying_key(&self) -> VerifyingKey;

    /// Pure Ed25519 (RFC 8032) signature of `message`.
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], SignError>;

    /// Where the private key lives (`file`, `hsm:pkcs11`), for operators.
    fn location(&self) -> String;

    /// True when a signature is computed in this process in a few
    /// microseconds (a key file). The writer then signs ordinary batches on
    /// its sequencer thread rather than waking a pool for them; a signer
    /// that waits on a device keeps every batch spread over the pool.
    fn signs_in_process(&self) -> bool {
        false
    }

    /// The published verifier key.
    fn note_verifier(&self) -> NoteVerifierKey {
        NoteVerifierKey::new(self.name(), self.verifying_key())
    }

    /// C2SP key id, 8 lower-case hex characters; named in every record.
    fn key_id_hex(&self) -> String {
        hex::encode(self.note_verifier().key_id())
    }

    /// The signature of the record whose chain link is `link`.
    fn record_signature(&self, link: &Link) -> Result<[u8; 64], SignError> {
        self.sign_message(&chain::signing_message(link))
    }

    /// A C2SP signed note of `checkpoint` under this key's name.
    fn checkpoint_note(&self, checkpoint: &Checkpoint) -> Result<String, SignError> {
        checkpoint.sign_detached(self.name(), &self.verifying_key(), |body| {
            self.sign_message(body)
        })
    }
}

impl std::fmt::Debug for dyn LedgerSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LedgerSigner({} in {})",
            self.key_id_hex(),
            self.location()
        )
    }
}

impl From<HsmSigner> for Arc<dyn LedgerSigner> {
    fn from(key: HsmSigner) -> Self {
        Arc::new(key)
    }
}

/// A ledger key held in an HSM backend as (instance, label).
pub struct HsmSigner {
    hsm: Arc<dyn HsmBackend>,
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
        hsm: Arc<dyn HsmBackend>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Self, HsmError> {
        let public = hsm.generate_signing_key(instance, label)?;
        Self::with_public(hsm, instance, label, name, &public)
    }

    /// The existing key pair labelled `label` for `instance` in `hsm`.
    pub fn open(
        hsm: Arc<dyn HsmBackend>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Self, HsmError> {
        let public = hsm.signing_public_key(instance, label)?;
        Self::with_public(hsm, instance, label, name, &public)
    }

    fn with_public(
        hsm: Arc<dyn HsmBackend>,
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

    /// The backend holding the key.
    pub fn backend(&self) -> &Arc<dyn HsmBackend> {
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
