//! Errors of key and ceremony commands, each with its Key Protect reason
//! code and HTTP status. Messages never carry key material.

use crate::governance::ApprovalDenial;
use crate::hsm::HsmError;
use crate::keys::ciphertext::CiphertextError;
use crate::keys::import_token::ImportError;
use crate::keys::material::MaterialError;
use crate::keys::payload::PayloadError;
use crate::keys::state::StateError;
use crate::writer::WriteError;

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
    /// Caller-supplied key material refused ([`crate::keys::payload`]).
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
    Denied(#[from] crate::governance::Denial),
    /// An approval, cancellation or request of a gated operation refused.
    #[error("refused: {0}")]
    Approval(#[from] ApprovalDenial),
    /// A refusal with its own Key Protect code and status (key rings, aliases).
    #[error("{message}")]
    Refused {
        status: u16,
        code: &'static str,
        message: String,
    },
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

impl From<CiphertextError> for KeyError {
    fn from(_: CiphertextError) -> Self {
        KeyError::Unprocessable
    }
}

impl KeyError {
    /// Key Protect reason code.
    pub fn kp_code(&self) -> &'static str {
        match self {
            KeyError::NotFound(_) => "KEY_NOT_FOUND_ERR",
            KeyError::State(e) => e.kp_code(),
            KeyError::Sealed | KeyError::NoMasterKey => "INSTANCE_SEALED_ERR",
            KeyError::Unprocessable => "UNPROCESSABLE_CIPHERTEXT_ERR",
            KeyError::Invalid(_) => "BAD_BODY_ERR",
            KeyError::Payload(e) => e.kp_code(),
            KeyError::Conflict(_) => "KEY_ALIAS_NOT_UNIQUE_ERR",
            KeyError::NotExtractable => "KEY_PAYLOAD_NOT_RETRIEVABLE",
            KeyError::Import(e) => e.kp_code(),
            KeyError::Unauthenticated(_)
            | KeyError::UnknownKeyOwner(_)
            | KeyError::BadOwnerSignature(_) => "UNAUTHORIZED_ERR",
            KeyError::WrongParts | KeyError::Ceremony(_) => "MASTER_KEY_CEREMONY_ERR",
            KeyError::Hsm(HsmError::DuplicatePart(_)) => "DUPLICATE_KEY_PART_ERR",
            KeyError::Hsm(HsmError::BadPart) => "BAD_KEY_PART_ERR",
            KeyError::Hsm(HsmError::State(_)) | KeyError::Hsm(HsmError::NotEnoughParts { .. }) => {
                "MASTER_KEY_CEREMONY_ERR"
            }
            // Input the HSM backend refused: a client error, described
            // without the backend's words (see `public_message`).
            KeyError::Hsm(HsmError::Invalid(_)) => "BAD_BODY_ERR",
            KeyError::Hsm(_) | KeyError::Material(_) | KeyError::Write(_) => {
                "INTERNAL_SERVER_ERROR"
            }
            KeyError::Denied(_) => "UNAUTHORIZED_ERR",
            KeyError::PolicyDenied(_) => "KEY_CREATE_IMPORT_ACCESS_ERR",
            KeyError::Refused { code, .. } => code,
            KeyError::Approval(d) => match d {
                ApprovalDenial::NotFound(_) => "NOT_FOUND_ERR",
                // The key is (already / not) set for deletion.
                ApprovalDenial::AlreadyPending { .. } | ApprovalDenial::NothingPending { .. } => {
                    "KEY_ACTION_INVALID_STATE_ERR"
                }
                // Key Protect's answer to a delete without a valid second
                // authorisation, the requester's own included.
                _ => "AUTHORIZATIONS_NOT_MET",
            },
        }
    }

    /// The message a client may see: the error's own, except for input an
    /// HSM backend refused, whose wording is the backend's internals.
    pub fn public_message(&self) -> String {
        match self {
            KeyError::Hsm(HsmError::Invalid(_)) => {
                "Invalid body data was passed: the key material or data in the request cannot be used"
                    .into()
            }
            other => other.to_string(),
        }
    }

    /// HTTP status for the REST layer.
    pub fn http_status(&self) -> u16 {
        match self {
            KeyError::NotFound(_) => 404,
            KeyError::State(e) => e.http_status(),
            KeyError::Sealed | KeyError::NoMasterKey => 503,
            KeyError::Unprocessable => 422,
            KeyError::Invalid(_) => 400,
            KeyError::Payload(e) => e.http_status(),
            KeyError::Conflict(_) => 409,
            KeyError::NotExtractable => 400,
            KeyError::Import(e) => e.http_status(),
            KeyError::Unauthenticated(_)
            | KeyError::UnknownKeyOwner(_)
            | KeyError::BadOwnerSignature(_) => 401,
            KeyError::WrongParts | KeyError::Ceremony(_) => 409,
            KeyError::Hsm(HsmError::DuplicatePart(_))
            | KeyError::Hsm(HsmError::State(_))
            | KeyError::Hsm(HsmError::NotEnoughParts { .. }) => 409,
            KeyError::Hsm(HsmError::BadPart) | KeyError::Hsm(HsmError::Invalid(_)) => 400,
            KeyError::Hsm(_) | KeyError::Material(_) | KeyError::Write(_) => 500,
            KeyError::PolicyDenied(_) => 403,
            KeyError::Denied(d) => match d {
                crate::governance::Denial::Conflict(_) => 409,
                crate::governance::Denial::NotFound(_) => 404,
                crate::governance::Denial::Command(_) | crate::governance::Denial::Invalid(_) => {
                    400
                }
                _ => 403,
            },
            KeyError::Refused { status, .. } => *status,
            KeyError::Approval(ApprovalDenial::NotFound(_)) => 404,
            KeyError::Approval(_) => 409,
        }
    }
}
