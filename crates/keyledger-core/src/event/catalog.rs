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
    /// Hex SHA-256 of `keyledger/v1/admin-command`, a zero byte and the
    /// document: the digest the signatures cover.
    pub digest: String,
    /// The command document exactly as signed, so auditors can re-hash it
    /// and re-check the signatures.
    pub document: String,
    /// Administrator key ids and base64 signatures over the command digest.
    pub signatures: Vec<AdminSignature>,
}

/// One administrator signature over a command.
// Its OpenAPI schema (feature `openapi`) is `governance::openapi`'s, which
// keeps `schemas/openapi.json` free of these field docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminSignature {
    /// Id of the signing administrator: hex of the first 8 bytes of the
    /// SHA-256 of their public key.
    pub admin_id: String,
    /// Base64 ed25519 signature over the command digest.
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
        /// The log's checkpoint origin and note name, `keyledger/<instance>`.
        origin: String,
        /// Key id (8 hex digits) of the first ledger key, which signs this record.
        ledger_key_id: String,
        /// Base64 ed25519 public key of the instance ledger key.
        ledger_public_key: String,
        /// Id of the first administrator: hex of the first 8 bytes of the
        /// SHA-256 of their public key.
        initial_admin_id: String,
        /// Base64 ed25519 public key of the first administrator.
        initial_admin_public_key: String,
    }
    /// An instance policy was set.
    InstancePolicyUpdated = ("instance.policy_updated", 1) {
        /// Key Protect's policy name: `dualAuthDelete`, `allowedNetwork`,
        /// `allowedIP` or `keyCreateImportAccess`.
        policy_type: String,
        /// Whether the policy is on.
        enabled: bool,
        /// The policy's settings, by Key Protect attribute name (for
        /// example `allowed_ip` for `allowedIP`); empty for `dualAuthDelete`.
        attributes: BTreeMap<String, serde_json::Value>,
        /// The signed `instance.set_policy` command that set it
        /// (`keyledger verify --policy` flags an event without one).
        command: Option<SignedCommandRef>,
    }
    /// The instance's SIEM sinks were set by a quorum-signed command (the
    /// whole list; empty: nothing is forwarded). Secrets are named by
    /// reference only.
    ExportSinksSet = ("export.sinks_set", 1) {
        /// The sinks in force from this event on.
        sinks: Vec<crate::governance::sinks::SinkSpec>,
        /// The signed `export.set_sinks` command that set them.
        command: SignedCommandRef,
    }
    /// The instance was zeroized: master key and key material destroyed, thresholds reset.
    InstanceZeroized = ("instance.zeroized", 1) {
        /// The signed `instance.zeroize` command that ordered it.
        command: SignedCommandRef,
        /// Number of key versions whose wrapped material was deleted.
        keys_shredded: u64,
    }
    /// The instance's crypto became unavailable (restart before unseal, master key zeroized).
    /// The service does not write this event yet: it reports a sealed
    /// instance in its metrics instead.
    InstanceSealed = ("instance.sealed", 1) {
        /// Why the instance is sealed, in words.
        reason: String,
    }
    /// The master key was restored into the HSM backend after a restart.
    InstanceUnsealed = ("instance.unsealed", 1) {
        /// The current master-key generation, whose parts the key owners
        /// loaded again.
        master_key_generation: u32,
        /// The verification pattern the re-loaded parts produced: the one
        /// the log already holds for that generation.
        verification_pattern: String,
    }

    // ---- administrators ----
    /// An administrator was added (imprint or by threshold command).
    AdminAdded = ("admin.added", 1) {
        /// The new administrator's id: hex of the first 8 bytes of the
        /// SHA-256 of their public key.
        admin_id: String,
        /// Display name, as the command gave it.
        name: String,
        /// Base64 ed25519 public key the administrator signs commands with.
        public_key: String,
        /// The signed `admin.add` command that added them
        /// (`keyledger verify --policy` flags an event without one).
        command: Option<SignedCommandRef>,
    }
    /// An administrator was removed by revocation-threshold command.
    AdminRemoved = ("admin.removed", 1) {
        /// Id of the administrator removed; their signatures no longer count.
        admin_id: String,
        /// The signed `admin.remove` command that removed them.
        command: SignedCommandRef,
    }
    /// Signature and revocation thresholds were set (leaves imprint mode).
    AdminThresholdsSet = ("admin.thresholds_set", 1) {
        /// Distinct administrator signatures most commands now need (1-8).
        signature_threshold: u8,
        /// Distinct administrator signatures removals and revocations now
        /// need (1-8).
        revocation_threshold: u8,
        /// The signed `admin.set_thresholds` command that set them.
        command: SignedCommandRef,
    }
    /// An administrator command was refused.
    AdminCommandDenied = ("admin.command_denied", 1) {
        /// Hex of the refused command's digest, the one its signatures
        /// cover, so its signers can recognise it.
        command_digest: String,
        /// The command's kind (`admin.add`, ...), or `unparsable` when the
        /// document does not parse.
        command_kind: String,
        /// Why the governance rules refused it, in words (at most 512
        /// characters).
        reason: String,
    }

    // ---- key owners and the master-key ceremony ----
    /// A key owner was registered with the ed25519 public key that
    /// authenticates their part submissions.
    KeyOwnerRegistered = ("key_owner.registered", 1) {
        /// The key owner's id (1-64 letters, digits, `-`, `_` or `.`),
        /// which their part submissions name.
        owner_id: String,
        /// Display name, as the command gave it.
        name: String,
        /// Base64 ed25519 public key.
        public_key: String,
        /// The signed `key_owner.register` command that registered them
        /// (`keyledger verify --policy` flags an event without one).
        command: Option<SignedCommandRef>,
    }
    /// A key owner was removed by revocation-threshold command; they can
    /// load no further master-key parts.
    KeyOwnerRemoved = ("key_owner.removed", 1) {
        /// Id of the key owner removed.
        owner_id: String,
        /// The signed `key_owner.remove` command that removed them.
        command: SignedCommandRef,
    }
    /// A key owner's master-key part was loaded into the "new" register.
    MasterKeyPartLoaded = ("master_key.part_loaded", 1) {
        /// The master-key generation the part is for: the next one, or the
        /// current one when unsealing after a restart.
        generation: u32,
        /// The key owner whose part it is (the event's actor).
        owner_id: String,
        /// Position of the part in this generation's loading order, from 1.
        part_index: u8,
        /// Verification pattern of the part (never the part).
        verification_pattern: String,
    }
    /// The administrators opened the loading of a master-key generation's parts.
    MasterKeyLoadApproved = ("master_key.load_approved", 1) {
        /// The generation whose parts key owners may now load: the one
        /// after the last activated.
        generation: u32,
        /// The signed `master_key.approve_load` command that opened it.
        command: SignedCommandRef,
    }
    /// All parts of the new master key were loaded and combined.
    MasterKeyCommitted = ("master_key.committed", 1) {
        /// The generation committed.
        generation: u32,
        /// Number of parts combined: one from every registered key owner.
        parts: u8,
        /// Verification pattern of the combined master key (never the key).
        verification_pattern: String,
        /// The signed `master_key.commit` command; absent only when the
        /// current generation is committed again to unseal after a restart.
        command: Option<SignedCommandRef>,
    }
    /// The committed master key became current.
    MasterKeyActivated = ("master_key.activated", 1) {
        /// The generation activated: the instance's first master key.
        generation: u32,
        /// Its verification pattern, as committed.
        verification_pattern: String,
        /// The signed `master_key.activate` command
        /// (`keyledger verify --policy` flags an event without one).
        command: Option<SignedCommandRef>,
    }
    /// Key material was re-wrapped from one master key generation to the next.
    MasterKeyRotated = ("master_key.rotated", 1) {
        /// The generation that was current, retired once the material is
        /// re-wrapped.
        from_generation: u32,
        /// The committed generation that becomes current.
        to_generation: u32,
        /// Number of key versions whose material was re-wrapped to the new
        /// generation.
        keys_rewrapped: u64,
        /// The signed `master_key.activate` command for `to_generation`
        /// (`keyledger verify --policy` flags an event without one).
        command: Option<SignedCommandRef>,
    }

    // ---- key lifecycle ----
    /// A root or standard key was generated.
    KeyCreated = ("key.created", 1) {
        /// The new key's id (a UUID).
        key_id: String,
        /// Display name (2-90 characters).
        name: String,
        /// Optional free text (at most 240 characters).
        description: Option<String>,
        /// The key ring the key belongs to (`default` unless one was given).
        key_ring_id: String,
        /// false = root key (never leaves the service).
        extractable: bool,
        /// Whether the caller supplied the material (a payload, or one
        /// encrypted to the import token) instead of the HSM generating it.
        imported: bool,
        /// The key's algorithm; always `AES`.
        algorithm: String,
        /// Size of the key material in bits (256 for a root key; 128, 192
        /// or 256 for a standard key).
        bit_length: u16,
        /// Id (a UUID) of the key's first version.
        version_id: String,
        /// Key check value of the version (hex), never the key.
        key_check_value: String,
        /// When the key expires (RFC 3339); null: never.
        expiration_date: Option<String>,
        /// Aliases the key was created with.
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
        /// The key activated.
        key_id: String,
    }
    /// A new key version was created by rotation.
    KeyRotated = ("key.rotated", 1) {
        /// The key rotated.
        key_id: String,
        /// Id (a UUID) of the new version, which becomes the key's current
        /// one; older versions still unwrap.
        version_id: String,
        /// Key check value of the new version (hex), never the key.
        key_check_value: String,
        /// Whether the caller supplied the new material; an imported key
        /// rotates only to imported material, a generated one only to
        /// generated material.
        imported: bool,
    }
    /// A suspended key was enabled again (state 2 -> 1).
    KeyEnabled = ("key.enabled", 1) {
        /// The key enabled.
        key_id: String,
    }
    /// A key was disabled (suspended, state 1 -> 2): no wrap, unwrap,
    /// rewrap or rotation until it is enabled.
    KeyDisabled = ("key.disabled", 1) {
        /// The key disabled.
        key_id: String,
    }
    /// A key passed its expiration date (state 3, deactivated).
    KeyExpired = ("key.expired", 1) {
        /// The key that expired.
        key_id: String,
    }
    /// First authorisation of a dual-authorisation delete (setKeyForDeletion).
    /// Found in older logs only: the service now records an
    /// `approval.requested` for `key.delete` instead.
    KeyDeletionAuthorized = ("key.deletion_authorized", 1) {
        /// The key set for deletion.
        key_id: String,
        /// When the authorisation lapses (RFC 3339), if no other principal
        /// has deleted the key by then.
        auth_expiration: String,
    }
    /// A key's pending deletion authorisation was withdrawn
    /// (unsetKeyForDeletion). Found in older logs only: the service now
    /// records `approval.cancelled` instead.
    KeyDeletionUnauthorized = ("key.deletion_unauthorized", 1) {
        /// The key no longer set for deletion.
        key_id: String,
    }
    /// The key was deleted (state 5); material stays until purge.
    KeyDestroyed = ("key.destroyed", 1) {
        /// The key deleted.
        key_id: String,
        /// Whether the caller asked to delete even if the key protects
        /// registered resources (keyledger has no registrations).
        force: bool,
        /// The approval request this delete executes (dual-authorisation
        /// delete); null when it executes none.
        approval_request_id: Option<String>,
    }
    /// A destroyed key was restored to Active within 30 days of its
    /// deletion, with the material kept since.
    KeyRestored = ("key.restored", 1) {
        /// The key restored.
        key_id: String,
        /// The key's current version, whose kept material serves again.
        version_id: String,
        /// Key check value of that version (hex), never the key.
        key_check_value: String,
    }
    /// The key's wrapped material was deleted (crypto-shredding).
    KeyPurged = ("key.purged", 1) {
        /// The key purged; its id can never be used again.
        key_id: String,
        /// Number of the key's versions, whose material is now gone.
        versions_shredded: u32,
        /// The approval request this purge executes (dual authorisation);
        /// null when it executes none.
        approval_request_id: Option<String>,
    }
    /// A key moved to another key ring (`PATCH /keys/{id}`, or a forced
    /// key-ring deletion moving its destroyed keys to `default`).
    KeyMoved = ("key.moved", 1) {
        /// The key moved.
        key_id: String,
        /// The key ring it was in.
        from_key_ring_id: String,
        /// The key ring it is in now.
        to_key_ring_id: String,
    }
    /// A key was given an alias, unique within the instance (at most five
    /// per key).
    KeyAliasCreated = ("key.alias_created", 1) {
        /// The key that gets the alias.
        key_id: String,
        /// The alias, which requests may use in place of the key id.
        alias: String,
    }
    /// An alias was taken from a key and may name another key later.
    KeyAliasDeleted = ("key.alias_deleted", 1) {
        /// The key that had the alias.
        key_id: String,
        /// The alias removed.
        alias: String,
    }
    /// A key policy was set: automatic rotation or dual-authorisation delete.
    KeyPolicyUpdated = ("key.policy_updated", 1) {
        /// The key whose policy was set.
        key_id: String,
        /// `rotation` or `dualAuthDelete`.
        policy_type: String,
        /// Whether the policy is on; a key's `dualAuthDelete`, once on,
        /// is never switched off.
        enabled: bool,
        /// For `rotation`: months between automatic rotations (1-12),
        /// null only when the policy is off. Always null for
        /// `dualAuthDelete`.
        interval_month: Option<u8>,
    }
    /// A standard key's payload was returned to a caller.
    KeyPayloadRead = ("key.payload_read", 1) {
        /// The standard key read.
        key_id: String,
        /// The version whose material was returned (the current one).
        version_id: String,
    }
    /// A key ring was created.
    KeyRingCreated = ("key_ring.created", 1) {
        /// The new key ring's id (2-100 letters, digits and `-`).
        key_ring_id: String,
    }
    /// An empty key ring was deleted (with `force`, its destroyed keys were
    /// first moved to `default`).
    KeyRingDeleted = ("key_ring.deleted", 1) {
        /// The key ring deleted.
        key_ring_id: String,
    }
    /// An import token was created; it replaces the instance's previous one.
    ImportTokenCreated = ("import_token.created", 1) {
        /// The new token's id (a UUID).
        token_id: String,
        /// When the token expires (RFC 3339), at most a day after its creation.
        expiration_date: String,
        /// How many times its public key and nonce may be retrieved (1-500).
        max_retrievals: u32,
        /// SHA-256 hex of the token's RSA public key.
        public_key_digest: String,
    }
    /// The import token's public key and nonce were handed out (one
    /// retrieval used). Never carries the key or the nonce.
    ImportTokenRetrieved = ("import_token.retrieved", 1) {
        /// The token retrieved: the instance's current one.
        token_id: String,
        /// Retrievals the token has left after this one.
        remaining_retrievals: u32,
    }

    // ---- key use ----
    /// A data key was wrapped.
    KeyWrapped = ("key.wrapped", 1) {
        /// The root key that wrapped it.
        key_id: String,
        /// The key's current version, which the ciphertext is under.
        version_id: String,
        /// Whether the service generated the data key.
        generated_dek: bool,
        /// Number of additional authenticated data strings the caller bound
        /// to the ciphertext (their values are not recorded).
        aad_entries: u32,
        /// SHA-256 hex of the returned ciphertext (a receipt for the caller).
        ciphertext_digest: String,
    }
    /// A ciphertext was unwrapped and its data key returned to the caller.
    KeyUnwrapped = ("key.unwrapped", 1) {
        /// The root key that unwrapped it.
        key_id: String,
        /// The version the ciphertext was under.
        version_id: String,
        /// When that version is not the current one: the current version the
        /// data key was also re-wrapped under in the answer; null otherwise.
        rewrapped_version_id: Option<String>,
        /// SHA-256 hex of the ciphertext as presented (its base64 text).
        ciphertext_digest: String,
    }
    /// A ciphertext was re-wrapped under the key's current version, without
    /// the data key leaving the service.
    KeyRewrapped = ("key.rewrapped", 1) {
        /// The root key that unwrapped and wrapped the data key again.
        key_id: String,
        /// The version the presented ciphertext was under.
        from_version_id: String,
        /// The key's current version, which the new ciphertext is under.
        to_version_id: String,
        /// SHA-256 hex of the new ciphertext returned (its base64 text).
        ciphertext_digest: String,
    }
    /// A key operation was refused or failed (wrong state, bad ciphertext, ...).
    KeyOperationFailed = ("key.operation_failed", 1) {
        /// The key as the caller named it (at most 128 characters): its id
        /// once it is found.
        key_id: String,
        /// Key Protect's name of the refused action (`wrap`, `delete`,
        /// `setKeyForDeletion`, ...).
        action: String,
        /// Key Protect reason code of the refusal
        /// (`KEY_ACTION_INVALID_STATE_ERR`, ...).
        reason: String,
    }

    // ---- approvals and the crypto worker ----
    /// A gated operation was requested; the requester (the event's actor)
    /// counts as its first authorisation.
    ApprovalRequested = ("approval.requested", 1) {
        /// The new request's id (a UUID).
        request_id: String,
        /// The gated operation (`key.delete` or `key.purge`).
        operation: String,
        /// What the operation acts on (a key id).
        target: String,
        /// Approvals by distinct principals other than the requester that
        /// the operation needs (the key service asks for one).
        required_approvals: u8,
        /// When the request lapses if it has not reached its quorum
        /// (RFC 3339; the key service's requests last seven days).
        expires_at: String,
    }
    /// A principal other than the requester approved a request.
    ApprovalGranted = ("approval.granted", 1) {
        /// The request approved.
        request_id: String,
        /// The principal who approved (the event's actor).
        approver: String,
    }
    /// A pending request, short of its quorum, was closed without running.
    ApprovalCancelled = ("approval.cancelled", 1) {
        /// The request cancelled.
        request_id: String,
        /// Why, in words (at most 256 characters).
        reason: String,
    }
    /// A request passed its expiry without its quorum and was closed by the
    /// service's expiry sweep.
    ApprovalExpired = ("approval.expired", 1) {
        /// The request that expired.
        request_id: String,
    }
    /// The crypto worker executed an approved operation.
    /// The key service's operations record `key.destroyed` or `key.purged`
    /// (with the request id) as their outcome instead.
    OperationExecuted = ("operation.executed", 1) {
        /// The request executed.
        request_id: String,
        /// Its gated operation.
        operation: String,
        /// What the operation acted on.
        target: String,
        /// Sequence number of the approval that completed the quorum.
        quorum_seq: u64,
    }
    /// An approved request's operation could not run any more (for
    /// example, the key changed state); this is the request's outcome.
    OperationFailed = ("operation.failed", 1) {
        /// The request whose operation failed.
        request_id: String,
        /// Its gated operation.
        operation: String,
        /// Reason code and message of the refusal (at most 512 characters).
        reason: String,
    }

    // ---- credentials and access ----
    /// An API bearer credential was issued by administrator command.
    CredentialIssued = ("credential.issued", 1) {
        /// The credential's id (1-64 letters, digits, `-`, `_` or `.`): the
        /// principal its requests act as.
        credential_id: String,
        /// The role it grants: `manager`, `writer`, `reader` or `auditor`.
        role: String,
        /// SHA-256 hex of the bearer token (the token itself is never stored).
        token_digest: String,
        /// The signed `credential.issue` command that issued it
        /// (`keyledger verify --policy` flags an event without one).
        command: Option<SignedCommandRef>,
    }
    /// An API credential was revoked by administrator command; its token
    /// is refused from then on.
    CredentialRevoked = ("credential.revoked", 1) {
        /// The credential revoked.
        credential_id: String,
        /// The signed `credential.revoke` command that revoked it
        /// (`keyledger verify --policy` flags an event without one).
        command: Option<SignedCommandRef>,
    }
    /// An authenticated request was denied.
    AccessDenied = ("access.denied", 1) {
        /// The action refused (an API action, `approve`,
        /// `master_key.load_part`, ...).
        action: String,
        /// What it was refused on: the request path, a request id or the
        /// master key (at most 128 characters).
        target: String,
        /// Why, in words.
        reason: String,
    }

    // ---- ledger ----
    /// The instance ledger key was rotated; this record is signed by the old key,
    /// every later record by the new one.
    LedgerKeyRotated = ("ledger_key.rotated", 1) {
        /// Key id (8 hex digits) of the retiring ledger key, which signs
        /// this record.
        old_key_id: String,
        /// Key id of the new ledger key.
        new_key_id: String,
        /// Base64 ed25519 public key of the new ledger key.
        new_public_key: String,
    }
    /// A torn tail (an unacknowledged, partly written batch) was cut off at open.
    LedgerTailRecovered = ("ledger.tail_recovered", 1) {
        /// Bytes cut off the end of the log.
        discarded_bytes: u64,
        /// Records in the log after the cut: this record's sequence number.
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
