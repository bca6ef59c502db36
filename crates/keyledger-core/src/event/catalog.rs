//! Every event type keyledger writes, with its payload. Names are past tense
//! and versioned; `schemas/events/<type>.v<version>.json` is generated from
//! these definitions (see `tests/event_schemas.rs`).
//!
//! Payloads carry ids, versions, digests, key check values and who/what/when;
//! never plaintext, key material, tokens or key parts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::EventPayload;

/// One entry of the event catalogue.
pub struct CatalogEntry {
    /// The event type.
    pub event_type: &'static str,
    /// The payload's schema version.
    pub version: u32,
    /// Generates the payload's JSON Schema.
    pub schema: fn() -> schemars::Schema,
}

impl CatalogEntry {
    /// File name of this type's schema under `schemas/events/`.
    pub fn schema_file(&self) -> String {
        format!("{}.v{}.json", self.event_type, self.version)
    }
}

/// Why a raw payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The catalogue has no such type and version.
    #[error("unknown event type {event_type:?} version {version}")]
    UnknownType {
        /// The event type given.
        event_type: String,
        /// The version given.
        version: u32,
    },
    /// The payload does not deserialise as its type.
    #[error("payload does not match its event type: {0}")]
    Invalid(String),
}

/// Reference to a quorum-signed administrator command carried in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCommandRef {
    /// SHA-256 hex of the canonical command document.
    pub digest: String,
    /// The canonical command document, so auditors can re-check signatures.
    pub document: String,
    /// Administrator key ids and base64 signatures over the command digest.
    pub signatures: Vec<AdminSignature>,
}

/// One administrator signature over a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminSignature {
    pub admin_id: String,
    pub signature: String,
}

macro_rules! event_types {
    ($(
        $(#[$meta:meta])*
        $name:ident = ($ty:literal, $ver:literal) {
            $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)?
        }
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
            #[serde(deny_unknown_fields)]
            pub struct $name { $( $(#[$fmeta])* pub $field: $fty ),* }

            impl EventPayload for $name {
                const TYPE: &'static str = $ty;
                const VERSION: u32 = $ver;
            }
        )*

        /// Checks that `json` is a valid payload of `event_type` version
        /// `version`; returns the catalogue's static name for the type.
        pub fn check_payload(event_type: &str, version: u32, json: &str) -> Result<&'static str, PayloadError> {
            $(
                if event_type == $ty && version == $ver {
                    return serde_json::from_str::<$name>(json)
                        .map(|_| $ty)
                        .map_err(|e| PayloadError::Invalid(e.to_string()));
                }
            )*
            Err(PayloadError::UnknownType { event_type: event_type.chars().take(64).collect(), version })
        }

        /// Every event type, in catalogue order.
        pub fn catalog() -> Vec<CatalogEntry> {
            vec![$(CatalogEntry {
                event_type: $ty,
                version: $ver,
                schema: || schemars::schema_for!($name),
            }),*]
        }
    };
}

event_types! {
    // ---- instance ----
    /// An instance was created with its ledger key and first administrator (imprint mode).
    InstanceCreated = ("instance.created", 1) {
        origin: String,
        ledger_key_id: String,
        /// Base64 ed25519 public key of the instance ledger key.
        ledger_public_key: String,
        initial_admin_id: String,
        initial_admin_public_key: String,
    }
    /// An instance policy was set.
    InstancePolicyUpdated = ("instance.policy_updated", 1) {
        policy_type: String,
        enabled: bool,
        attributes: BTreeMap<String, serde_json::Value>,
        command: Option<SignedCommandRef>,
    }
    /// The instance was zeroized: master key and key material destroyed, thresholds reset.
    InstanceZeroized = ("instance.zeroized", 1) {
        command: SignedCommandRef,
        keys_shredded: u64,
    }
    /// The instance's crypto became unavailable (restart before unseal, master key zeroized).
    InstanceSealed = ("instance.sealed", 1) {
        reason: String,
    }
    /// The master key was restored into the HSM backend after a restart.
    InstanceUnsealed = ("instance.unsealed", 1) {
        master_key_generation: u32,
        verification_pattern: String,
    }

    // ---- administrators ----
    /// An administrator was added (imprint or by threshold command).
    AdminAdded = ("admin.added", 1) {
        admin_id: String,
        name: String,
        public_key: String,
        command: Option<SignedCommandRef>,
    }
    /// An administrator was removed by revocation-threshold command.
    AdminRemoved = ("admin.removed", 1) {
        admin_id: String,
        command: SignedCommandRef,
    }
    /// Signature and revocation thresholds were set (leaves imprint mode).
    AdminThresholdsSet = ("admin.thresholds_set", 1) {
        signature_threshold: u8,
        revocation_threshold: u8,
        command: SignedCommandRef,
    }
    /// An administrator command was refused.
    AdminCommandDenied = ("admin.command_denied", 1) {
        command_digest: String,
        command_kind: String,
        reason: String,
    }

    // ---- key owners and the master-key ceremony ----
    /// A key owner was registered with the ed25519 public key that
    /// authenticates their part submissions.
    KeyOwnerRegistered = ("key_owner.registered", 1) {
        owner_id: String,
        name: String,
        /// Base64 ed25519 public key.
        public_key: String,
        command: Option<SignedCommandRef>,
    }
    KeyOwnerRemoved = ("key_owner.removed", 1) {
        owner_id: String,
        command: SignedCommandRef,
    }
    /// A key owner's master-key part was loaded into the "new" register.
    MasterKeyPartLoaded = ("master_key.part_loaded", 1) {
        generation: u32,
        owner_id: String,
        part_index: u8,
        /// Verification pattern of the part (never the part).
        verification_pattern: String,
    }
    /// The administrators opened the loading of a master-key generation's parts.
    MasterKeyLoadApproved = ("master_key.load_approved", 1) {
        generation: u32,
        command: SignedCommandRef,
    }
    /// All parts of the new master key were loaded and combined.
    MasterKeyCommitted = ("master_key.committed", 1) {
        generation: u32,
        parts: u8,
        verification_pattern: String,
        command: Option<SignedCommandRef>,
    }
    /// The committed master key became current.
    MasterKeyActivated = ("master_key.activated", 1) {
        generation: u32,
        verification_pattern: String,
        command: Option<SignedCommandRef>,
    }
    /// Key material was re-wrapped from one master key generation to the next.
    MasterKeyRotated = ("master_key.rotated", 1) {
        from_generation: u32,
        to_generation: u32,
        keys_rewrapped: u64,
        command: Option<SignedCommandRef>,
    }

    // ---- key lifecycle ----
    /// A root or standard key was generated.
    KeyCreated = ("key.created", 1) {
        key_id: String,
        name: String,
        description: Option<String>,
        key_ring_id: String,
        /// false = root key (never leaves the service).
        extractable: bool,
        imported: bool,
        algorithm: String,
        bit_length: u16,
        version_id: String,
        /// Key check value of the version (hex), never the key.
        key_check_value: String,
        expiration_date: Option<String>,
        aliases: Vec<String>,
        /// When the key becomes usable (RFC 3339). A key created with a date
        /// after the event's time starts in state 0 (pre-activation) until
        /// `key.activated`. Absent: active at once (as Key Protect).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation_date: Option<String>,
        /// The import token whose public key carried the key material (secure
        /// import); absent for generated keys and plain payload imports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        import_token_id: Option<String>,
    }
    /// A pre-activation key reached its activation date (state 0 -> 1).
    KeyActivated = ("key.activated", 1) {
        key_id: String,
    }
    /// A new key version was created by rotation.
    KeyRotated = ("key.rotated", 1) {
        key_id: String,
        version_id: String,
        key_check_value: String,
        imported: bool,
    }
    KeyEnabled = ("key.enabled", 1) {
        key_id: String,
    }
    KeyDisabled = ("key.disabled", 1) {
        key_id: String,
    }
    /// A key passed its expiration date (state 3, deactivated).
    KeyExpired = ("key.expired", 1) {
        key_id: String,
    }
    /// First authorisation of a dual-authorisation delete (setKeyForDeletion).
    KeyDeletionAuthorized = ("key.deletion_authorized", 1) {
        key_id: String,
        auth_expiration: String,
    }
    KeyDeletionUnauthorized = ("key.deletion_unauthorized", 1) {
        key_id: String,
    }
    /// The key was deleted (state 5); material stays until purge.
    KeyDestroyed = ("key.destroyed", 1) {
        key_id: String,
        force: bool,
        approval_request_id: Option<String>,
    }
    KeyRestored = ("key.restored", 1) {
        key_id: String,
        version_id: String,
        key_check_value: String,
    }
    /// The key's wrapped material was deleted (crypto-shredding).
    KeyPurged = ("key.purged", 1) {
        key_id: String,
        versions_shredded: u32,
        approval_request_id: Option<String>,
    }
    KeyMoved = ("key.moved", 1) {
        key_id: String,
        from_key_ring_id: String,
        to_key_ring_id: String,
    }
    KeyAliasCreated = ("key.alias_created", 1) {
        key_id: String,
        alias: String,
    }
    KeyAliasDeleted = ("key.alias_deleted", 1) {
        key_id: String,
        alias: String,
    }
    KeyPolicyUpdated = ("key.policy_updated", 1) {
        key_id: String,
        policy_type: String,
        enabled: bool,
        interval_month: Option<u8>,
    }
    /// A standard key's payload was returned to a caller.
    KeyPayloadRead = ("key.payload_read", 1) {
        key_id: String,
        version_id: String,
    }
    KeyRingCreated = ("key_ring.created", 1) {
        key_ring_id: String,
    }
    KeyRingDeleted = ("key_ring.deleted", 1) {
        key_ring_id: String,
    }
    /// An import token was created; it replaces the instance's previous one.
    ImportTokenCreated = ("import_token.created", 1) {
        token_id: String,
        expiration_date: String,
        max_retrievals: u32,
        /// SHA-256 hex of the token's RSA public key.
        public_key_digest: String,
    }
    /// The import token's public key and nonce were handed out (one
    /// retrieval used). Never carries the key or the nonce.
    ImportTokenRetrieved = ("import_token.retrieved", 1) {
        token_id: String,
        remaining_retrievals: u32,
    }

    // ---- key use ----
    /// A data key was wrapped.
    KeyWrapped = ("key.wrapped", 1) {
        key_id: String,
        version_id: String,
        /// Whether the service generated the data key.
        generated_dek: bool,
        aad_entries: u32,
        /// SHA-256 hex of the returned ciphertext (a receipt for the caller).
        ciphertext_digest: String,
    }
    KeyUnwrapped = ("key.unwrapped", 1) {
        key_id: String,
        version_id: String,
        rewrapped_version_id: Option<String>,
        ciphertext_digest: String,
    }
    KeyRewrapped = ("key.rewrapped", 1) {
        key_id: String,
        from_version_id: String,
        to_version_id: String,
        ciphertext_digest: String,
    }
    /// A key operation was refused or failed (wrong state, bad ciphertext, ...).
    KeyOperationFailed = ("key.operation_failed", 1) {
        key_id: String,
        action: String,
        reason: String,
    }

    // ---- approvals and the crypto worker ----
    ApprovalRequested = ("approval.requested", 1) {
        request_id: String,
        operation: String,
        target: String,
        required_approvals: u8,
        expires_at: String,
    }
    ApprovalGranted = ("approval.granted", 1) {
        request_id: String,
        approver: String,
    }
    ApprovalCancelled = ("approval.cancelled", 1) {
        request_id: String,
        reason: String,
    }
    ApprovalExpired = ("approval.expired", 1) {
        request_id: String,
    }
    /// The crypto worker executed an approved operation.
    OperationExecuted = ("operation.executed", 1) {
        request_id: String,
        operation: String,
        target: String,
        /// Sequence number of the approval that completed the quorum.
        quorum_seq: u64,
    }
    OperationFailed = ("operation.failed", 1) {
        request_id: String,
        operation: String,
        reason: String,
    }

    // ---- credentials and access ----
    CredentialIssued = ("credential.issued", 1) {
        credential_id: String,
        role: String,
        /// SHA-256 hex of the bearer token (the token itself is never stored).
        token_digest: String,
        command: Option<SignedCommandRef>,
    }
    CredentialRevoked = ("credential.revoked", 1) {
        credential_id: String,
        command: Option<SignedCommandRef>,
    }
    /// An authenticated request was denied.
    AccessDenied = ("access.denied", 1) {
        action: String,
        target: String,
        reason: String,
    }

    // ---- ledger ----
    /// The instance ledger key was rotated; this record is signed by the old key,
    /// every later record by the new one.
    LedgerKeyRotated = ("ledger_key.rotated", 1) {
        old_key_id: String,
        new_key_id: String,
        new_public_key: String,
    }
    /// A torn tail (an unacknowledged, partly written batch) was cut off at open.
    LedgerTailRecovered = ("ledger.tail_recovered", 1) {
        discarded_bytes: u64,
        size: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_unique_dotted_and_past_tense_ish() {
        let entries = catalog();
        let mut names: Vec<_> = entries.iter().map(|e| e.schema_file()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate event type");
        for e in &entries {
            assert!(e.event_type.contains('.'), "{}", e.event_type);
            let verb = e.event_type.rsplit('.').next().unwrap_or_default();
            assert!(
                verb.ends_with("ed") || verb.ends_with("_read") || verb.ends_with("_set"),
                "not past tense: {}",
                e.event_type
            );
        }
    }
}
