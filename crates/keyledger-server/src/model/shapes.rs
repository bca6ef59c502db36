//! The answers of the API, each one type that is both what a handler
//! builds and serialises and the schema the OpenAPI document gives it:
//! Key Protect's error body, key and other collections, the action
//! results, the ledger, governance and operations answers, so the document
//! cannot drift from what the server sends. `deny_unknown_fields` makes
//! each `additionalProperties: false`, so an answer not built from its
//! shape breaks the checks (`tests/openapi.rs`, schemathesis).
//!
//! A field's order here is its property's order in the document; the
//! order on the wire is [`super::answer_bytes`]'s (members sorted by name,
//! as the answers have always been), except for the wrap, unwrap and rewrap
//! results, the hot path, which are written as declared (their declared
//! order is their wire order). An optional member is an `Option` skipped
//! when `None` (`value_type` keeps its schema non-nullable); one that is
//! absent or `null` is an `Option<Option<_>>`. A member whose schema is a
//! constant has a type that serialises to exactly that constant
//! ([`KeyMediaType`], [`StatusOk`], ...).

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{ToResponse, ToSchema};
use zeroize::Zeroizing;

use super::params::ApprovalWord;
use super::{ERROR_MEDIA, KEY_MEDIA};

/// `metadata` of a Key Protect collection.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionMetadata {
    /// The media type of the resources.
    pub collection_type: &'static str,
    /// How many resources this answer holds.
    pub collection_total: u64,
    /// With `totalCount=true` on a list: how many there are in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub total_count: Option<u64>,
}

impl CollectionMetadata {
    /// `total` resources of `collection_type` (no `totalCount`).
    pub fn of(collection_type: &'static str, total: usize) -> Self {
        CollectionMetadata {
            collection_type,
            collection_total: total as u64,
            total_count: None,
        }
    }
}

/// One reason of a Key Protect error.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorReason {
    /// The Key Protect reason code, e.g. `KEY_NOT_FOUND_ERR`.
    pub code: &'static str,
    pub message: String,
    /// The HTTP status.
    pub status: u16,
    pub more_info: &'static str,
}

/// A Key Protect error resource.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorResource {
    /// The status text and the message.
    pub error_msg: String,
    #[schema(min_items = 1)]
    pub reasons: Vec<ErrorReason>,
}

/// Key Protect's error body (`application/vnd.ibm.kms.error+json`), for
/// every refusal, actix's own included. 5xx bodies say nothing internal.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub metadata: CollectionMetadata,
    #[schema(min_items = 1, max_items = 1)]
    pub resources: Vec<ErrorResource>,
}

impl ErrorBody {
    /// The body of one error.
    pub fn of(resource: ErrorResource) -> Self {
        ErrorBody {
            metadata: CollectionMetadata::of(ERROR_MEDIA, 1),
            resources: vec![resource],
        }
    }
}

macro_rules! error_response {
    ($($name:ident = $description:literal;)*) => {$(
        #[derive(ToResponse)]
        #[response(description = $description, content_type = "application/vnd.ibm.kms.error+json")]
        pub struct $name(#[allow(dead_code)] ErrorBody);
    )*};
}

error_response! {
    BadRequest = "Bad request: a missing header (`INVALID_HEADER_ERR`), a malformed or unknown query parameter (`INVALID_QUERY_PARAM_ERR`), or a malformed body (`BAD_BODY_ERR`).";
    Unauthorized = "No, an unknown or another instance's token, or an unknown instance (`UNAUTHORIZED_ERR`): all the same answer.";
    Forbidden = "The caller's role may not do this, or the instance's `allowedIP`/`allowedNetwork` policy excludes its address (`FORBIDDEN_ERR`); recorded as `access.denied`.";
    NotFound = "No such key, key ring, alias or import token, a position beyond the log, or a path that names nothing.";
    Conflict = "The target's state does not allow this (e.g. `KEY_ACTION_INVALID_STATE_ERR`, `KEY_RING_CONFLICT_ERR`, `KEY_ALIAS_NOT_UNIQUE_ERR`).";
    Gone = "The key is destroyed (`KEY_DELETED_ERR`).";
    PayloadTooLarge = "The body exceeds `body_limit_bytes` (`BODY_TOO_LARGE_ERR`).";
    UnsupportedMediaType = "The body is neither `application/json` nor `application/vnd.ibm.kms.*+json` (`BAD_BODY_ERR`).";
    Unprocessable = "The key is not active (`KEY_INVALID_STATE_ERR`) or the ciphertext cannot be unwrapped (`UNPROCESSABLE_CIPHERTEXT_ERR`, one opaque error).";
    InternalError = "The operation's event could not be made durable, or the HSM or key-material store failed: nothing was done (`INTERNAL_SERVER_ERROR`, no details).";
    Unavailable = "The instance is sealed: its key owners have not re-submitted their master-key parts (`INSTANCE_SEALED_ERR`).";
}

// ------------------------------------------------------- key resources

fn constant(value: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .build()
}

/// String members whose schema is one constant: each a unit type that
/// serialises to exactly that constant, with the schema saying so.
macro_rules! constant_strings {
    ($($(#[$meta:meta])* $name:ident = $value:expr;)*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl $name {
            /// The one value.
            pub const VALUE: &'static str = $value;

            fn schema() -> Object {
                constant(Self::VALUE)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(Self::VALUE)
            }
        }
    )*};
}

constant_strings! {
    /// `type` of a key: `application/vnd.ibm.kms.key+json`.
    KeyMediaType = KEY_MEDIA;
    /// `type` of a key policy: `application/vnd.ibm.kms.policy+json`.
    PolicyMediaType = "application/vnd.ibm.kms.policy+json";
    /// `status` of `GET /health`: `ok`.
    StatusOk = "ok";
    /// `status` of `GET /ready` when every instance can do crypto: `ready`.
    StatusReady = "ready";
    /// `status` of `GET /ready` when some instance is sealed: `sealed`.
    StatusSealed = "sealed";
}

fn key_state() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some([0, 1, 2, 3, 5]))
        .description(Some(
            "0 pre-activation, 1 active, 2 suspended (disabled), 3 deactivated (expired), 5 destroyed",
        ))
        .build()
}

/// `algorithmMetadata` of a key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlgorithmMetadata {
    /// `"256"` (AES-256).
    pub bit_length: String,
    /// `"GCM"`.
    pub mode: String,
}

/// `dualAuthDelete` of a key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyDualAuthDelete {
    pub enabled: bool,
    pub key_set_for_deletion: bool,
    /// When the first authorisation to delete expires.
    #[schema(required = true, format = DateTime)]
    pub auth_expiration: Option<String>,
}

/// A key version: its id and when it was made.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVersionInfo {
    pub id: String,
    #[schema(format = DateTime)]
    pub creation_date: String,
}

/// A key's rotation policy as shown on the key.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    pub enabled: bool,
    /// Months between rotations, 1-12.
    #[schema(required = true)]
    pub interval_month: Option<u8>,
}

/// The Key Protect key resource (`resources.rs::key_resource`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyResource {
    /// `application/vnd.ibm.kms.key+json`.
    #[serde(rename = "type")]
    #[schema(schema_with = KeyMediaType::schema)]
    pub kind: KeyMediaType,
    pub id: String,
    pub name: String,
    /// In the order they were added.
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub description: Option<String>,
    #[schema(schema_with = key_state)]
    pub state: u8,
    pub crn: String,
    #[serde(rename = "keyRingID")]
    pub key_ring_id: String,
    /// `false`: a root key, whose material never leaves the service.
    pub extractable: bool,
    pub imported: bool,
    #[schema(format = DateTime)]
    pub creation_date: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub last_update_date: String,
    /// `"AES"`.
    pub algorithm_type: String,
    pub algorithm_metadata: AlgorithmMetadata,
    pub dual_auth_delete: KeyDualAuthDelete,
    pub deleted: bool,
    /// The version new wraps use.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = KeyVersionInfo)]
    pub key_version: Option<KeyVersionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    pub last_rotate_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    pub expiration_date: Option<String>,
    /// Present when a rotation policy was ever set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = KeyRotation)]
    pub rotation: Option<KeyRotation>,
    // The deleted-only members: absent (`None`) unless the key is deleted,
    // then present, `null` where unknown.
    /// Deleted keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deletion_date: Option<Option<String>>,
    /// Deleted keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub deleted_by: Option<Option<String>>,
    /// Deleted keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub restore_expiration_date: Option<Option<String>>,
    /// Deleted keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub restore_allowed: Option<bool>,
    /// Deleted keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub purge_allowed: Option<bool>,
    /// Deleted keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub purge_allowed_from: Option<Option<String>>,
    /// Deleted keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub purge_scheduled_on: Option<Option<String>>,
    /// `GET /keys/{id}` of a standard (extractable) key that is not
    /// destroyed: the key material, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = Byte)]
    pub payload: Option<Zeroizing<String>>,
}

/// The key as answered to `POST /keys` with `prefer: return=minimal`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyMinimal {
    #[serde(rename = "type")]
    #[schema(schema_with = KeyMediaType::schema)]
    pub kind: KeyMediaType,
    pub id: String,
    pub name: String,
    pub crn: String,
}

/// A created key: in full, or minimal with `prefer: return=minimal`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CreatedKey {
    Full(Box<KeyResource>),
    Minimal(KeyMinimal),
}

/// The constructors of a collection whose media type is `$media`.
macro_rules! collection_impl {
    ($name:ident of $item:ty = $media:expr) => {
        impl $name {
            /// The answer's media type, also its `metadata.collectionType`.
            pub const MEDIA: &'static str = $media;

            /// `resources`, counted in `metadata`.
            pub fn new(resources: Vec<$item>) -> Self {
                $name {
                    metadata: CollectionMetadata::of(Self::MEDIA, resources.len()),
                    resources,
                }
            }

            /// With `metadata.totalCount` (`totalCount=true` on a list).
            pub fn with_total_count(mut self, total: usize) -> Self {
                self.metadata.total_count = Some(total as u64);
                self
            }
        }
    };
}

macro_rules! collection {
    ($($(#[$meta:meta])* $name:ident of $item:ty = $media:expr;)*) => {$(
        $(#[$meta])*
        #[derive(Serialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub metadata: CollectionMetadata,
            pub resources: Vec<$item>,
        }

        collection_impl!($name of $item = $media);
    )*};
}

collection! {
    /// A collection of keys (`application/vnd.ibm.kms.key+json`).
    KeyCollection of KeyResource = KEY_MEDIA;
    /// The created key (`application/vnd.ibm.kms.key+json`).
    CreatedKeyCollection of CreatedKey = KEY_MEDIA;
    /// A key's versions, newest first (`application/vnd.ibm.kms.key_version+json`).
    KeyVersionCollection of KeyVersionInfo = "application/vnd.ibm.kms.key_version+json";
    /// A key's policies (`application/vnd.ibm.kms.policy+json`).
    KeyPolicyCollection of KeyPolicy = PolicyMediaType::VALUE;
    /// The instance policies (`application/vnd.ibm.kms.policy+json`).
    InstancePolicyCollection of InstancePolicy = PolicyMediaType::VALUE;
    /// `allowedIP` port (`application/vnd.ibm.kms.allowed_ip_metadata+json`):
    /// one resource with an enabled `allowedIP` policy, else none.
    AllowedIpPortCollection of AllowedIpPort = "application/vnd.ibm.kms.allowed_ip_metadata+json";
    /// The created alias (`application/vnd.ibm.kms.key_alias+json`).
    KeyAliasCollection of KeyAlias = "application/vnd.ibm.kms.key_alias+json";
    /// Key rings (`application/vnd.ibm.kms.key_ring+json`), `default` first.
    KeyRingCollection of KeyRing = "application/vnd.ibm.kms.key_ring+json";
}

/// Registrations (`application/vnd.ibm.kms.registration+json`): keyledger
/// records none, so `resources` is always empty.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationCollection {
    pub metadata: CollectionMetadata,
    // An array of no elements: the type holds none, as the schema says.
    #[schema(value_type = Vec<serde_json::Value>, max_items = 0)]
    pub resources: [serde_json::Value; 0],
}

impl RegistrationCollection {
    /// The answer's media type, also its `metadata.collectionType`.
    pub const MEDIA: &'static str = "application/vnd.ibm.kms.registration+json";

    /// The only registrations keyledger has: none.
    pub fn none() -> Self {
        RegistrationCollection {
            metadata: CollectionMetadata::of(Self::MEDIA, 0),
            resources: [],
        }
    }

    /// With `metadata.totalCount` (`totalCount=true` on a list).
    pub fn with_total_count(mut self, total: usize) -> Self {
        self.metadata.total_count = Some(total as u64);
        self
    }
}

/// `rotation` of a key policy.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationPolicyData {
    pub enabled: bool,
    /// Months between rotations, 1-12; absent when never set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u8)]
    pub interval_month: Option<u8>,
}

/// `dualAuthDelete` of a key policy.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DualAuthPolicyData {
    pub enabled: bool,
}

/// A key policy: `rotation` or `dualAuthDelete` (one of the two).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPolicy {
    #[serde(rename = "type")]
    #[schema(schema_with = PolicyMediaType::schema)]
    pub kind: PolicyMediaType,
    pub crn: String,
    #[schema(format = DateTime)]
    pub creation_date: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub last_update_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = RotationPolicyData)]
    pub rotation: Option<RotationPolicyData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = DualAuthPolicyData)]
    pub dual_auth_delete: Option<DualAuthPolicyData>,
}

/// `policy_data` of an instance policy.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePolicyData {
    pub enabled: bool,
    /// The policy's attributes, when it has any (e.g. `allowed_ip`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// An instance policy, as set by administrator command `instance.set_policy`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePolicy {
    /// `allowedIP`, `allowedNetwork`, `dualAuthDelete` or `keyCreateImportAccess`.
    pub policy_type: String,
    pub policy_data: InstancePolicyData,
    /// When the policy was last set (the event's time).
    #[serde(rename = "lastUpdated", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    pub last_updated: Option<String>,
    /// The principal of the event that last set it.
    #[serde(rename = "updatedBy", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub updated_by: Option<String>,
}

/// The port of the private endpoint (this server's port: keyledger has no
/// separate private endpoint).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedIpPort {
    pub private_endpoint_port: u16,
}

/// An alias of a key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyAlias {
    pub key_id: String,
    pub alias: String,
    #[schema(format = DateTime)]
    pub creation_date: String,
    pub created_by: String,
}

/// A key ring.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRing {
    pub id: String,
}

/// The instance's import token (`application/vnd.ibm.kms.import_token+json`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportTokenMetadata {
    #[schema(format = DateTime)]
    pub creation_date: String,
    #[schema(format = DateTime)]
    pub expiration_date: String,
    pub max_allowed_retrievals: u32,
    pub remaining_retrievals: u32,
}

/// The import token with its public key and nonce (one retrieval used).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportTokenContents {
    #[schema(format = DateTime)]
    pub creation_date: String,
    #[schema(format = DateTime)]
    pub expiration_date: String,
    pub max_allowed_retrievals: u32,
    pub remaining_retrievals: u32,
    /// The RSA public key to encrypt the key material to: base64 of its PEM (SPKI) text, as Key Protect sends it.
    pub payload: String,
    /// The nonce to encrypt under the key material (base64).
    pub nonce: String,
}

/// `{"id": ...}` of a key version.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRef<'a> {
    pub id: &'a str,
}

// The three action results borrow from the key service's result (no copy
// on the hot path) and are written in their declared order; the data keys
// are `Zeroizing`, wiped once serialised.

/// The answer to `wrap` (`application/vnd.ibm.kms.key_action_wrap+json`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrapResult<'a> {
    /// The wrapped data key: it names the key and version and binds the AAD.
    pub ciphertext: &'a str,
    pub key_version: VersionRef<'a>,
    /// Without `plaintext` in the request: the generated data key, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = Byte)]
    pub plaintext: Option<Zeroizing<String>>,
}

/// The answer to `unwrap` (`application/vnd.ibm.kms.key_action_unwrap+json`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnwrapResult<'a> {
    /// The data key, base64.
    #[schema(value_type = String, format = Byte)]
    pub plaintext: Zeroizing<String>,
    /// The version that wrapped the ciphertext.
    pub key_version: VersionRef<'a>,
    /// When that version is not the newest: the data key wrapped again
    /// under the newest one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub ciphertext: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = VersionRef)]
    pub rewrapped_key_version: Option<VersionRef<'a>>,
}

/// The answer to `rewrap` (`application/vnd.ibm.kms.key_action_rewrap+json`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewrapResult<'a> {
    /// The data key wrapped under the newest version.
    pub ciphertext: &'a str,
    /// The version that wrapped the given ciphertext.
    pub key_version: VersionRef<'a>,
    pub rewrapped_key_version: VersionRef<'a>,
}

// ------------------------------------------------------ ledger and admin

/// One record of the log.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerRecord {
    pub seq: u64,
    /// The exact stored event JSON, as a string (never re-serialise it).
    pub event: String,
    /// The ledger key's ed25519 signature, base64 (64 bytes).
    pub signature: String,
    /// The RFC 9162 leaf hash, base64.
    pub leaf_hash: String,
}

/// `GET /ledger/records`: records `start..end` of a log of `size`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordsPage {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
    pub size: u64,
    #[schema(max_items = 1000)]
    pub records: Vec<LedgerRecord>,
}

/// An RFC 9162 inclusion proof (hashes base64, leaf side first).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub seq: u64,
    pub size: u64,
    pub leaf_hash: String,
    pub leaf_hash_hex: String,
    pub proof: Vec<String>,
    /// The root of the tree of `size`: trust it only once it equals a
    /// verified checkpoint's.
    pub root: String,
}

/// An RFC 9162 consistency proof between the trees of sizes `from` and `to`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<String>,
    pub from_root: String,
    pub to_root: String,
}

/// `{seq, leaf_hash}` of the event an admin request appended (hex).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    pub seq: u64,
    pub leaf_hash: String,
}

/// The answer to an accepted administrator command.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    pub seq: u64,
    /// The event type the command was recorded as.
    #[serde(rename = "type")]
    pub event_type: String,
    pub receipt: ReceiptBody,
}

/// What a key owner needs to seal a master-key part.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CeremonyStatus {
    pub generation: u32,
    /// `true` when the ceremony re-loads the current master key after a restart.
    pub unseal: bool,
    /// The X25519 public key to seal parts to, base64.
    pub public_key: String,
    pub loaded_owners: Vec<String>,
    pub registered_owners: Vec<String>,
}

/// The answer to an accepted master-key part.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartResult {
    /// The part's verification pattern.
    pub verification_pattern: String,
    pub seq: u64,
    pub receipt: ReceiptBody,
}

/// Signature and revocation thresholds.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceThresholds {
    pub signature: u8,
    pub revocation: u8,
}

/// An administrator.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceAdmin {
    pub name: String,
    /// ed25519, base64.
    pub public_key: String,
    pub added_seq: u64,
}

/// An API credential (never its token digest).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceCredential {
    pub role: String,
    pub issued_seq: u64,
    pub revoked: bool,
}

/// An instance policy as last set.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernancePolicy {
    pub enabled: bool,
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub updated_seq: u64,
}

/// `{"executed_at_seq": n}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalExecuted {
    pub executed_at_seq: u64,
}

/// `{"failed": "why"}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFailed {
    pub failed: String,
}

/// Where an approval stands.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ApprovalState {
    Word(ApprovalWord),
    Executed(ApprovalExecuted),
    Failed(ApprovalFailed),
}

/// A gated operation and its approvals.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceApproval {
    pub operation: String,
    pub target: String,
    pub requester: String,
    pub required: u8,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Approver principal → seq of their approval.
    pub approvers: BTreeMap<String, u64>,
    pub requested_seq: u64,
    pub status: ApprovalState,
}

/// The governance projection (`GET /admin/state`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceStateBody {
    pub imprint_mode: bool,
    /// `null` in imprint mode.
    #[schema(required = true)]
    pub thresholds: Option<GovernanceThresholds>,
    pub admins: BTreeMap<String, GovernanceAdmin>,
    pub credentials: BTreeMap<String, GovernanceCredential>,
    pub policies: BTreeMap<String, GovernancePolicy>,
    pub approvals: BTreeMap<String, GovernanceApproval>,
    pub load_approved_generations: Vec<u32>,
}

// ------------------------------------------------------------ operations

/// `GET /health`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[schema(schema_with = StatusOk::schema)]
    pub status: StatusOk,
}

/// `GET /ready` when every instance can do crypto.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    #[schema(schema_with = StatusReady::schema)]
    pub status: StatusReady,
}

/// `GET /ready` when some instance is sealed. The API listener gives only
/// their number (it names no instance to anonymous callers); the
/// operations listener's `/ready` also names them (`docs/REST.md`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    #[schema(schema_with = StatusSealed::schema)]
    pub status: StatusSealed,
    #[schema(minimum = 1)]
    pub sealed_count: u64,
}

/// The operations listener's `GET /ready`: `ready` or `sealed` (503),
/// naming the sealed instances and the SIEM sinks that are behind (which
/// alone do not make the server unready: forwarding never holds up keys).
/// Not in the document, which describes the API listener.
#[derive(Serialize)]
pub struct OpsReady {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sealed_instances: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sinks_behind: Vec<SinkBehind>,
}

/// A SIEM sink that is failing or has not caught up for a while.
#[derive(Serialize)]
pub struct SinkBehind {
    pub instance: String,
    pub sink: String,
    /// Records not acknowledged yet.
    pub lag: u64,
    /// Why its last delivery failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The first line of the bundle stream (`GET /ledger/bundle`, format in
/// `docs/REST.md`). The document describes the stream as binary, so this
/// has no schema.
#[derive(Serialize)]
pub struct BundleStreamHeader<'a, M: Serialize> {
    pub format: &'static str,
    pub manifest: M,
    pub checkpoint: &'a str,
}
