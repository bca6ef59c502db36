//! Why the domain refused or failed a request: one reason code per
//! outcome, in the domain's words. Every domain error (`StateError`,
//! `PayloadError`, `ApprovalDenial`, `Denial`, the service's `KeyError`,
//! ...) names its reason with a `reason()` method; what a reason becomes on
//! the wire (HTTP status, Key Protect error body) is the server's mapping
//! alone (`keyledger::server::errors`).
//!
//! A reason's [`Reason::code`] is the name the audit log records for it
//! (`key.operation_failed.reason`, `operation.failed.reason`). The event
//! catalogue chose Key Protect's reason codes for those names, so the same
//! strings appear in Key Protect error bodies; they are the domain's names
//! because the log keeps them, not because HTTP needs them.

/// A reason code: what a refusal or failure was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No key with that id or alias.
    KeyNotFound,
    /// The key's state (or its dual-authorisation policy, or a pending
    /// deletion) does not allow the action.
    InvalidState,
    /// The key is past its expiration date and the action needs a live key.
    KeyExpired,
    /// The key was deleted.
    KeyDeleted,
    /// Registrations need an active key.
    KeyNotActive,
    /// The 30-day restore window has passed.
    RestoreExpired,
    /// A time-gated action (purge) asked for too early.
    TooEarly,
    /// The key was rotated within the minimum rotation interval.
    RotationTooSoon,
    /// Set for deletion asked of a key without dual-authorisation delete.
    NotDualAuth,
    /// A gated operation lacks the authorisations it needs.
    AuthorizationsNotMet,
    /// A root-key action asked of a standard key (or a token import of a
    /// standard key).
    RootKeyRequired,
    /// A field (key material, import-token parameter, ...) has a value the
    /// domain refuses.
    InvalidField,
    /// Rotating a key created with caller-supplied material needs material.
    PayloadRequired,
    /// Only imported keys are restored with key material.
    ImportedKeyRequired,
    /// A root key's material never leaves the service.
    NotExtractable,
    /// A ciphertext (or its AAD) could not be used: one opaque reason.
    UnprocessableCiphertext,
    /// An instance policy forbids creating or importing this key.
    CreateImportForbidden,
    /// No key ring with that id.
    KeyRingNotFound,
    /// A key ring with that id exists already.
    KeyRingExists,
    /// A key ring that still holds keys cannot be deleted.
    KeyRingNotEmpty,
    /// The key has no such alias.
    AliasNotFound,
    /// The alias names another key already.
    AliasNotUnique,
    /// The key has as many aliases as it may have.
    AliasQuotaReached,
    /// The import token expired or has no retrievals left.
    ImportTokenExpired,
    /// The encrypted nonce does not open with the key material and IV given.
    NonceIvMismatch,
    /// The encrypted nonce is not the import token's nonce.
    WrongNonce,
    /// An import token could not be generated or read back.
    ImportTokenBroken,
    /// The thing asked for (an import token, an approval request) does not exist.
    NotFound,
    /// The request itself is malformed.
    InvalidRequest,
    /// A listing parameter is malformed.
    InvalidQuery,
    /// The request proves no principal of this instance.
    Unauthenticated,
    /// The caller's credential role does not allow the action.
    RoleNotAllowed,
    /// The rules refuse an administrator command or gated operation
    /// (signatures, thresholds, replay, expiry, policy).
    CommandRefused,
    /// An administrator command is malformed.
    CommandInvalid,
    /// An administrator command would create what exists already.
    CommandConflict,
    /// An administrator command names something that does not exist.
    CommandTargetNotFound,
    /// The instance's master key is not loaded (or does not exist yet).
    Sealed,
    /// A master-key ceremony step is out of order or its parts disagree.
    Ceremony,
    /// The key owner submitted a part already.
    DuplicateKeyPart,
    /// A submitted key part is malformed.
    BadKeyPart,
    /// The service failed (HSM, key-material store, audit log): nothing the
    /// caller can change.
    Internal,
    /// The audit log cannot be written right now (its database is down or
    /// failing over, or the writer stopped): nothing was done; retry later.
    LedgerUnavailable,
}

impl Reason {
    /// The reason's name as the audit log records it (Key Protect's reason
    /// code for it).
    pub fn code(self) -> &'static str {
        use Reason as R;
        match self {
            R::KeyNotFound => "KEY_NOT_FOUND_ERR",
            R::InvalidState => "KEY_ACTION_INVALID_STATE_ERR",
            R::KeyExpired => "KEY_EXPIRED_ERR",
            R::KeyDeleted => "KEY_DELETED_ERR",
            R::KeyNotActive => "KEY_INVALID_STATE_ERR",
            R::RestoreExpired => "KEY_RESTORE_EXPIRED",
            R::TooEarly => "REQ_TOO_EARLY_ERR",
            R::RotationTooSoon => "KEY_ROTATION_NOT_PERMITTED",
            R::NotDualAuth => "NOT_DUAL_AUTH_ERR",
            R::AuthorizationsNotMet => "AUTHORIZATIONS_NOT_MET",
            R::RootKeyRequired => "KEY_ROOT_REQ_ERR",
            R::InvalidField => "INVALID_FIELD_ERR",
            R::PayloadRequired => "KEY_PAYLOAD_REQ_ERR",
            R::ImportedKeyRequired => "KEY_IMPT_REQ_ERR",
            R::NotExtractable => "KEY_PAYLOAD_NOT_RETRIEVABLE",
            R::UnprocessableCiphertext => "UNPROCESSABLE_CIPHERTEXT_ERR",
            R::CreateImportForbidden => "KEY_CREATE_IMPORT_ACCESS_ERR",
            R::KeyRingNotFound => "KEY_RING_NOT_FOUND_ERR",
            R::KeyRingExists => "KEY_RING_CONFLICT_ERR",
            R::KeyRingNotEmpty => "KEY_RING_NOT_EMPTY_ERR",
            R::AliasNotFound => "KEY_ALIAS_NOT_FOUND_ERR",
            R::AliasNotUnique => "KEY_ALIAS_NOT_UNIQUE_ERR",
            R::AliasQuotaReached => "KEY_ALIAS_QUOTA_ERR",
            R::ImportTokenExpired => "IMPORT_TOKEN_EXPIRED_ERR",
            R::NonceIvMismatch => "INCORRECT_NONCE_IV_ERR",
            R::WrongNonce => "INCORRECT_NONCE_ERR",
            R::ImportTokenBroken => "INTERNAL_SERVER_ERR",
            R::NotFound => "NOT_FOUND_ERR",
            R::InvalidRequest => "BAD_BODY_ERR",
            R::InvalidQuery => "INVALID_QUERY_PARAM_ERR",
            R::Unauthenticated
            | R::CommandRefused
            | R::CommandInvalid
            | R::CommandConflict
            | R::CommandTargetNotFound => "UNAUTHORIZED_ERR",
            R::RoleNotAllowed => "FORBIDDEN_ERR",
            R::Sealed => "INSTANCE_SEALED_ERR",
            R::Ceremony => "MASTER_KEY_CEREMONY_ERR",
            R::DuplicateKeyPart => "DUPLICATE_KEY_PART_ERR",
            R::BadKeyPart => "BAD_KEY_PART_ERR",
            R::Internal => "INTERNAL_SERVER_ERROR",
            R::LedgerUnavailable => "LEDGER_UNAVAILABLE_ERR",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
