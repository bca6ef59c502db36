//! Who signs an instance's records and checkpoints: the [`LedgerSigner`]
//! abstraction over where the ledger key lives.
//!
//! - [`LedgerKey`](crate::ledger_key::LedgerKey): the private key in a 0600
//!   file, signing in process (the writer signs a batch on all cores).
//! - A key pair inside a signing device (an HSM backend that supports
//!   signing, PKCS#11): implemented above this crate (the root package's
//!   `HsmSigner`), made and reopened through a
//!   [`KeyDevice`](crate::ledger::KeyDevice); every signature is one device
//!   call, checked against the public key before use.
//!
//! All sign exactly the messages of `docs/LEDGER-FORMAT.md` (sections 3 and
//! 6), and a key's id and note verifier key derive from its public key only,
//! so a log signed in an HSM verifies like one signed with a key file.

use ed25519_dalek::VerifyingKey;

use keyledger_core::chain::{self, Link};
use keyledger_core::checkpoint::{Checkpoint, NoteVerifierKey};
/// Why a signature could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The device holding the key refused or failed; its own error, as
    /// text (the writer reports it as [`crate::writer::WriteError::Signing`]).
    #[error("HSM signing failed: {0}")]
    Device(String),
    /// The device returned a signature that the key's public key rejects.
    #[error("the HSM returned a signature that does not verify under the ledger key {key_id}")]
    BadSignature {
        /// The ledger key's C2SP key id (hex).
        key_id: String,
    },
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
