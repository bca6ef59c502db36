//! Errors of key and ceremony commands, each with its reason code
//! ([`Reason`]); what a reason becomes on the wire is the server's to say.
//! Messages never carry key material.

use crate::ciphertext::CiphertextError;
use crate::hsm::HsmError;
use crate::import_token::ImportError;
use crate::material::MaterialError;
use keyledger_core::decide::Refusal;
use keyledger_core::governance::ApprovalDenial;
use keyledger_core::keys::payload::PayloadError;
use keyledger_core::keys::state::StateError;
use keyledger_core::reason::Reason;
use keyledger_ledger::writer::WriteError;

/// Why a key or ceremony command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key {0:?} not found")]
    NotFound(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the instance is sealed: its master key is not loaded")]
    Sealed,
    #[error("the instance has no active master key yet")]
    NoMasterKey,
    /// Any problem with a ciphertext or its AAD: one opaque error.
    #[error("the ciphertext could not be unwrapped")]
    Unprocessable,
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Caller-supplied key material refused ([`keyledger_core::keys::payload`]).
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("root keys never leave the service")]
    NotExtractable,
    /// An import token could not be created, retrieved or used.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A request over the network that proves no principal of this
    /// instance (no administrator signature that verifies, no registered
    /// key owner's): refused and not logged.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("key owner {0:?} is not registered")]
    UnknownKeyOwner(String),
    #[error("the part submission signature of key owner {0:?} is invalid")]
    BadOwnerSignature(String),
    #[error("the loaded parts do not reproduce the master key (verification pattern mismatch)")]
    WrongParts,
    #[error("master-key ceremony: {0}")]
    Ceremony(String),
    #[error("HSM: {0}")]
    Hsm(HsmError),
    #[error("key material store: {0}")]
    Material(#[from] MaterialError),
    #[error("audit log: {0}")]
    Write(#[from] WriteError),
    /// An instance policy forbids the operation.
    #[error("{0}")]
    PolicyDenied(String),
    /// An administrator command or gated operation refused by the rules.
    #[error("refused: {0}")]
    Denied(#[from] keyledger_core::governance::Denial),
    /// An approval, cancellation or request of a gated operation refused.
    #[error("refused: {0}")]
    Approval(#[from] ApprovalDenial),
    /// A refusal with its own reason code (key rings, aliases, key material).
    #[error("{message}")]
    Refused { reason: Reason, message: String },
}

impl From<HsmError> for KeyError {
    fn from(e: HsmError) -> Self {
        match e {
            HsmError::Sealed(_) => KeyError::Sealed,
            HsmError::Decrypt => KeyError::Unprocessable,
            other => KeyError::Hsm(other),
        }
    }
}

/// A key aggregate's refusal in the service's terms (the same variants
/// the service's own checks answer with, so responses do not change).
impl From<Refusal> for KeyError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownKey(id) => KeyError::NotFound(id),
            Refusal::Conflict(what) => KeyError::Conflict(what),
            Refusal::NoMasterKey => KeyError::NoMasterKey,
            Refusal::State(e) => KeyError::State(e),
            Refusal::Payload(e) => KeyError::Payload(e),
            Refusal::TokenImportNeedsRootKey => KeyError::Import(ImportError::RootKeyRequired),
            Refusal::NotExtractable(_) => KeyError::NotExtractable,
            Refusal::Invalid(m) => KeyError::Invalid(m),
            Refusal::Denied(d) => KeyError::Denied(d),
            Refusal::UnknownKeyOwner(id) => KeyError::UnknownKeyOwner(id),
            other @ Refusal::LoadNotApproved(_) => KeyError::Ceremony(other.to_string()),
            Refusal::ImportTokenNotFound => KeyError::Import(ImportError::NotFound),
            Refusal::ImportTokenExpired => KeyError::Import(ImportError::Expired),
            Refusal::ImportTokenExhausted => KeyError::Import(ImportError::RetrievalsExhausted),
            Refusal::ApprovalDenied { denial, .. } => KeyError::Approval(denial),
            other @ (Refusal::NotDue(_)
            | Refusal::RoleNotAllowed { .. }
            | Refusal::AliasInUse(_)
            | Refusal::AliasQuota(_)
            | Refusal::AliasNotFound
            | Refusal::ApprovalDuplicate(_)
            | Refusal::ApprovalMismatch(_)
            | Refusal::QuorumNotReached { .. }
            | Refusal::NotLapsed(_)
            | Refusal::ImportTokenInvalid(_)
            | Refusal::CommandMissing
            | Refusal::CommandMismatch(_)
            | Refusal::DigestMismatch
            | Refusal::KeyRingUnknown(_)
            | Refusal::KeyRingExists(_)
            | Refusal::KeyRingNotEmpty(_)
            | Refusal::ApprovalRequestInvalid(_)) => KeyError::Refused {
                reason: other.reason(),
                message: other.to_string(),
            },
            // A credential revoked (or acting out of its role) since the
            // request was authenticated: refused like a bearer token that
            // is no credential of the instance.
            Refusal::PolicyDenied(m) => KeyError::PolicyDenied(m),
            other @ (Refusal::CredentialUnknown(_)
            | Refusal::CredentialRevoked(_)
            | Refusal::CredentialRoleMismatch { .. }) => {
                KeyError::Unauthenticated(other.to_string())
            }
        }
    }
}

impl From<CiphertextError> for KeyError {
    fn from(_: CiphertextError) -> Self {
        KeyError::Unprocessable
    }
}

impl KeyError {
    /// The reason code of this refusal or failure.
    pub fn reason(&self) -> Reason {
        match self {
            KeyError::NotFound(_) => Reason::KeyNotFound,
            KeyError::State(e) => e.reason(),
            KeyError::Sealed | KeyError::NoMasterKey => Reason::Sealed,
            KeyError::Unprocessable => Reason::UnprocessableCiphertext,
            KeyError::Invalid(_) => Reason::InvalidRequest,
            KeyError::Payload(e) => e.reason(),
            KeyError::Conflict(_) => Reason::AliasNotUnique,
            KeyError::NotExtractable => Reason::NotExtractable,
            KeyError::Import(e) => e.reason(),
            KeyError::Unauthenticated(_)
            | KeyError::UnknownKeyOwner(_)
            | KeyError::BadOwnerSignature(_) => Reason::Unauthenticated,
            KeyError::WrongParts | KeyError::Ceremony(_) => Reason::Ceremony,
            KeyError::Hsm(HsmError::DuplicatePart(_)) => Reason::DuplicateKeyPart,
            KeyError::Hsm(HsmError::BadPart) => Reason::BadKeyPart,
            KeyError::Hsm(HsmError::State(_)) | KeyError::Hsm(HsmError::NotEnoughParts { .. }) => {
                Reason::Ceremony
            }
            // Input the HSM backend refused: a client error (whose message
            // the server words itself, not the backend).
            KeyError::Hsm(HsmError::Invalid(_)) => Reason::InvalidRequest,
            // The log could not take the event (database down or failing
            // over, another server's record came first, writer stopped):
            // nothing was done, and a retry may succeed.
            KeyError::Write(WriteError::Storage(_) | WriteError::Stale | WriteError::Closed)
            // The key-material store on the same database, unreachable:
            // nothing was stored either.
            | KeyError::Material(MaterialError::Unavailable(_)) => Reason::LedgerUnavailable,
            KeyError::Hsm(_) | KeyError::Material(_) | KeyError::Write(_) => Reason::Internal,
            KeyError::Denied(d) => d.reason(),
            KeyError::PolicyDenied(_) => Reason::CreateImportForbidden,
            KeyError::Refused { reason, .. } => *reason,
            KeyError::Approval(d) => d.reason(),
        }
    }
}
