//! The answers the handlers build with `json!`, as schemas: Key Protect's
//! error body, key and other collections, the action results, the ledger,
//! governance and operations answers. `deny_unknown_fields` makes each
//! `additionalProperties: false`: a field the server sends without
//! documenting it breaks the checks.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{ToResponse, ToSchema};

use super::KEY_MEDIA;
use super::params::ApprovalWord;

/// `metadata` of a Key Protect collection.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionMetadata {
    /// The media type of the resources.
    pub collection_type: String,
    /// How many resources this answer holds.
    pub collection_total: u64,
    /// With `totalCount=true` on a list: how many there are in all.
    #[serde(default)]
    pub total_count: u64,
}

/// One reason of a Key Protect error.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorReason {
    /// The Key Protect reason code, e.g. `KEY_NOT_FOUND_ERR`.
    pub code: String,
    pub message: String,
    /// The HTTP status.
    pub status: u16,
    pub more_info: String,
}

/// A Key Protect error resource.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorResource {
    /// The status text and the message.
    pub error_msg: String,
    #[schema(min_items = 1)]
    pub reasons: Vec<ErrorReason>,
}

/// Key Protect's error body (`application/vnd.ibm.kms.error+json`), for
/// every refusal, actix's own included. 5xx bodies say nothing internal.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub metadata: CollectionMetadata,
    #[schema(min_items = 1, max_items = 1)]
    pub resources: Vec<ErrorResource>,
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

fn key_media_type() -> Object {
    constant(KEY_MEDIA)
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
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlgorithmMetadata {
    /// `"256"` (AES-256).
    pub bit_length: String,
    /// `"GCM"`.
    pub mode: String,
}

/// `dualAuthDelete` of a key.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyDualAuthDelete {
    pub enabled: bool,
    pub key_set_for_deletion: bool,
    /// When the first authorisation to delete expires.
    #[schema(required = true, format = DateTime)]
    pub auth_expiration: Option<String>,
}

/// A key version: its id and when it was made.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVersionInfo {
    pub id: String,
    #[schema(format = DateTime)]
    pub creation_date: String,
}

/// A key's rotation policy as shown on the key.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    pub enabled: bool,
    /// Months between rotations, 1-12.
    #[schema(required = true)]
    pub interval_month: Option<u8>,
}

/// The Key Protect key resource (`resources.rs::key_resource`).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyResource {
    /// `application/vnd.ibm.kms.key+json`.
    #[serde(rename = "type")]
    #[schema(schema_with = key_media_type)]
    pub kind: String,
    pub id: String,
    pub name: String,
    /// In the order they were added.
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
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
    #[serde(default)]
    pub key_version: KeyVersionInfo,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub last_rotate_date: String,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expiration_date: String,
    /// Present when a rotation policy was ever set.
    #[serde(default)]
    pub rotation: KeyRotation,
    /// Deleted keys only.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub deletion_date: Option<String>,
    /// Deleted keys only.
    #[serde(default)]
    pub deleted_by: Option<String>,
    /// Deleted keys only.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub restore_expiration_date: Option<String>,
    /// Deleted keys only.
    #[serde(default)]
    pub restore_allowed: bool,
    /// Deleted keys only.
    #[serde(default)]
    pub purge_allowed: bool,
    /// Deleted keys only.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub purge_allowed_from: Option<String>,
    /// Deleted keys only.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub purge_scheduled_on: Option<String>,
    /// `GET /keys/{id}` of a standard (extractable) key that is not
    /// destroyed: the key material, base64.
    #[serde(default)]
    #[schema(format = Byte)]
    pub payload: String,
}

/// The key as answered to `POST /keys` with `prefer: return=minimal`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyMinimal {
    #[serde(rename = "type")]
    #[schema(schema_with = key_media_type)]
    pub kind: String,
    pub id: String,
    pub name: String,
    pub crn: String,
}

/// A created key: in full, or minimal with `prefer: return=minimal`.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum CreatedKey {
    Full(Box<KeyResource>),
    Minimal(KeyMinimal),
}

macro_rules! collection {
    ($($(#[$meta:meta])* $name:ident of $item:ty;)*) => {$(
        $(#[$meta])*
        #[derive(ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub metadata: CollectionMetadata,
            pub resources: Vec<$item>,
        }
    )*};
}

collection! {
    /// A collection of keys (`application/vnd.ibm.kms.key+json`).
    KeyCollection of KeyResource;
    /// The created key (`application/vnd.ibm.kms.key+json`).
    CreatedKeyCollection of CreatedKey;
    /// A key's versions, newest first (`application/vnd.ibm.kms.key_version+json`).
    KeyVersionCollection of KeyVersionInfo;
    /// A key's policies (`application/vnd.ibm.kms.policy+json`).
    KeyPolicyCollection of KeyPolicy;
    /// The instance policies (`application/vnd.ibm.kms.policy+json`).
    InstancePolicyCollection of InstancePolicy;
    /// `allowedIP` port (`application/vnd.ibm.kms.allowed_ip_metadata+json`):
    /// one resource with an enabled `allowedIP` policy, else none.
    AllowedIpPortCollection of AllowedIpPort;
    /// The created alias (`application/vnd.ibm.kms.key_alias+json`).
    KeyAliasCollection of KeyAlias;
    /// Key rings (`application/vnd.ibm.kms.key_ring+json`), `default` first.
    KeyRingCollection of KeyRing;
}

/// Registrations (`application/vnd.ibm.kms.registration+json`): keyledger
/// records none, so `resources` is always empty.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationCollection {
    pub metadata: CollectionMetadata,
    #[schema(max_items = 0)]
    pub resources: Vec<serde_json::Value>,
}

/// `rotation` of a key policy.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationPolicyData {
    pub enabled: bool,
    /// Months between rotations, 1-12; absent when never set.
    #[serde(default)]
    pub interval_month: u8,
}

/// `dualAuthDelete` of a key policy.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DualAuthPolicyData {
    pub enabled: bool,
}

fn policy_media_type() -> Object {
    constant("application/vnd.ibm.kms.policy+json")
}

/// A key policy: `rotation` or `dualAuthDelete` (one of the two).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPolicy {
    #[serde(rename = "type")]
    #[schema(schema_with = policy_media_type)]
    pub kind: String,
    pub crn: String,
    #[schema(format = DateTime)]
    pub creation_date: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub last_update_date: String,
    #[serde(default)]
    pub rotation: RotationPolicyData,
    #[serde(default)]
    pub dual_auth_delete: DualAuthPolicyData,
}

/// `policy_data` of an instance policy.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePolicyData {
    pub enabled: bool,
    /// The policy's attributes, when it has any (e.g. `allowed_ip`).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// An instance policy, as set by administrator command `instance.set_policy`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePolicy {
    /// `allowedIP`, `allowedNetwork`, `dualAuthDelete` or `keyCreateImportAccess`.
    pub policy_type: String,
    pub policy_data: InstancePolicyData,
    /// When the policy was last set (the event's time).
    #[serde(default, rename = "lastUpdated")]
    #[schema(format = DateTime)]
    pub last_updated: String,
    /// The principal of the event that last set it.
    #[serde(default, rename = "updatedBy")]
    pub updated_by: String,
}

/// The port of the private endpoint (this server's port: keyledger has no
/// separate private endpoint).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedIpPort {
    pub private_endpoint_port: u16,
}

/// An alias of a key.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyAlias {
    pub key_id: String,
    pub alias: String,
    #[schema(format = DateTime)]
    pub creation_date: String,
    pub created_by: String,
}

/// A key ring.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRing {
    pub id: String,
}

/// The instance's import token (`application/vnd.ibm.kms.import_token+json`).
#[derive(ToSchema)]
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
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportTokenContents {
    #[schema(format = DateTime)]
    pub creation_date: String,
    #[schema(format = DateTime)]
    pub expiration_date: String,
    pub max_allowed_retrievals: u32,
    pub remaining_retrievals: u32,
    /// The RSA public key to encrypt the key material to (base64 DER).
    pub payload: String,
    /// The nonce to encrypt under the key material (base64).
    pub nonce: String,
}

/// `{"id": ...}` of a key version.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRef {
    pub id: String,
}

/// The answer to `wrap` (`application/vnd.ibm.kms.key_action_wrap+json`).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrapResult {
    /// The wrapped data key: it names the key and version and binds the AAD.
    pub ciphertext: String,
    pub key_version: VersionRef,
    /// Without `plaintext` in the request: the generated data key, base64.
    #[serde(default)]
    #[schema(format = Byte)]
    pub plaintext: String,
}

/// The answer to `unwrap` (`application/vnd.ibm.kms.key_action_unwrap+json`).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnwrapResult {
    /// The data key, base64.
    #[schema(format = Byte)]
    pub plaintext: String,
    /// The version that wrapped the ciphertext.
    pub key_version: VersionRef,
    /// When that version is not the newest: the data key wrapped again
    /// under the newest one.
    #[serde(default)]
    pub ciphertext: String,
    #[serde(default)]
    pub rewrapped_key_version: VersionRef,
}

/// The answer to `rewrap` (`application/vnd.ibm.kms.key_action_rewrap+json`).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewrapResult {
    /// The data key wrapped under the newest version.
    pub ciphertext: String,
    /// The version that wrapped the given ciphertext.
    pub key_version: VersionRef,
    pub rewrapped_key_version: VersionRef,
}

// ------------------------------------------------------ ledger and admin

/// One record of the log.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
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
#[derive(ToSchema)]
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
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<String>,
    pub from_root: String,
    pub to_root: String,
}

/// `{seq, leaf_hash}` of the event an admin request appended (hex).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    pub seq: u64,
    pub leaf_hash: String,
}

/// The answer to an accepted administrator command.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    pub seq: u64,
    /// The event type the command was recorded as.
    #[serde(rename = "type")]
    pub event_type: String,
    pub receipt: ReceiptBody,
}

/// What a key owner needs to seal a master-key part.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartResult {
    /// The part's verification pattern.
    pub verification_pattern: String,
    pub seq: u64,
    pub receipt: ReceiptBody,
}

/// Signature and revocation thresholds.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceThresholds {
    pub signature: u8,
    pub revocation: u8,
}

/// An administrator.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceAdmin {
    pub name: String,
    /// ed25519, base64.
    pub public_key: String,
    pub added_seq: u64,
}

/// An API credential (never its token digest).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceCredential {
    pub role: String,
    pub issued_seq: u64,
    pub revoked: bool,
}

/// An instance policy as last set.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernancePolicy {
    pub enabled: bool,
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub updated_seq: u64,
}

/// `{"executed_at_seq": n}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalExecuted {
    pub executed_at_seq: u64,
}

/// `{"failed": "why"}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFailed {
    pub failed: String,
}

/// Where an approval stands.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ApprovalState {
    Word(ApprovalWord),
    Executed(ApprovalExecuted),
    Failed(ApprovalFailed),
}

/// A gated operation and its approvals.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
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

fn status_word(word: &str) -> Object {
    constant(word)
}

fn status_ok() -> Object {
    status_word("ok")
}

fn status_ready() -> Object {
    status_word("ready")
}

fn status_sealed() -> Object {
    status_word("sealed")
}

/// `GET /health`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[schema(schema_with = status_ok)]
    pub status: String,
}

/// `GET /ready` when every instance can do crypto.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    #[schema(schema_with = status_ready)]
    pub status: String,
}

/// `GET /ready` when some instance is sealed. The API listener gives only
/// their number (it names no instance to anonymous callers); the
/// operations listener's `/ready` also names them (`docs/REST.md`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    #[schema(schema_with = status_sealed)]
    pub status: String,
    #[schema(minimum = 1)]
    pub sealed_count: u64,
}
