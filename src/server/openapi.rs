//! The OpenAPI 3.1 document of the REST API, generated from the code.
//!
//! - Each handler carries a `#[utoipa::path]` annotation (method, path,
//!   parameters, request body, every status it answers); the request types
//!   the handlers parse derive `ToSchema`, so a field added to a body is a
//!   field added to the document.
//! - The handlers build their answers with `json!`; their shapes are
//!   described here ([`KeyResource`], [`WrapResult`], ...), with
//!   `additionalProperties: false`, so a field the server starts sending
//!   without documenting it breaks `tests/openapi.rs` and the schemathesis
//!   run (`scripts/schemathesis`) rather than passing unnoticed.
//! - One handler, [`super::keys::action`], serves every
//!   `POST /keys/{id}/actions/{action}`; each action has its own body and
//!   answer, so [`ActionOperations`] documents each as its own operation.
//! - Cross-cutting facts are added once by [`Conventions`]: the bearer
//!   security scheme, the `correlation-id` request and response header
//!   (the access log middleware reads and echoes it on every request), and
//!   the links from a created key to the operations on it.
//!
//! Committed as `schemas/openapi.json` (`tests/openapi.rs` checks it is
//! current; `KEYLEDGER_UPDATE_SCHEMAS=1 cargo test --test openapi`
//! rewrites it) and served at `GET /api/v2/openapi.json`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr, Required};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use super::errors::ApiError;

/// Key Protect's error media type.
pub const ERROR_MEDIA: &str = "application/vnd.ibm.kms.error+json";
/// Key Protect's key media type.
pub const KEY_MEDIA: &str = "application/vnd.ibm.kms.key+json";
/// The media type of the action bodies (`POST /keys/{id}/actions/...`).
pub const KEY_ACTION_MEDIA: &str = "application/vnd.ibm.kms.key_action+json";

// ---------------------------------------------------------------- headers

/// Headers of every Key Protect, auditor and admin endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct InstanceHeader {
    /// The instance (keystore) the request is for. Missing: 400
    /// `INVALID_HEADER_ERR`; unknown: the same 401 as a wrong token.
    #[param(rename = "bluemix-instance", min_length = 1)]
    pub bluemix_instance: String,
}

/// `x-kms-key-ring`: the key ring a list is restricted to, or a new key
/// is created in (when the body names none).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct KeyRingHeader {
    /// A key ring id.
    #[param(rename = "x-kms-key-ring")]
    pub key_ring: Option<String>,
}

/// `prefer`: `return=minimal` or `return=representation`.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct PreferHeader {
    /// `return=minimal` (a shorter or empty answer) or
    /// `return=representation` (the key); see each operation for its default.
    pub prefer: Option<String>,
}

/// The key a request is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyId {
    /// The key's id, or one of its aliases.
    #[param(min_length = 1)]
    pub id: String,
}

/// `limit`, `offset` and `totalCount` of a paged list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct Paging {
    /// How many resources to answer.
    pub limit: Option<u32>,
    /// How many resources to skip.
    pub offset: Option<u32>,
    /// `true`: `metadata.totalCount` says how many there are in all.
    pub total_count: Option<bool>,
}

/// The query of `GET /keys` and `HEAD /keys`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct KeyListQuery {
    /// 1-5000 (default 200).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<u32>,
    /// How many keys to skip.
    pub offset: Option<u32>,
    /// Only keys in these states: a comma-separated list of 0, 1, 2, 3, 5.
    #[param(pattern = "^([01235](,[01235])*)?$")]
    pub state: Option<String>,
    /// Only standard (`true`) or root (`false`) keys.
    pub extractable: Option<bool>,
    /// Keys whose name or alias contains this text; prefixes `not:`,
    /// `exact:`, `name:`, `alias:`, `escape:` (at most 100 characters).
    #[param(max_length = 100)]
    pub search: Option<String>,
    /// Comma-separated fields (`id`, `name`, `state`, `extractable`,
    /// `imported`, `creationDate`, `lastUpdateDate`, `lastRotateDate`,
    /// `deletionDate`, `expirationDate`), `-` for descending.
    #[param(
        pattern = r"^-?(?:id|name|state|extractable|imported|creationDate|lastUpdateDate|lastRotateDate|deletionDate|expirationDate)(?:,-?(?:id|name|state|extractable|imported|creationDate|lastUpdateDate|lastRotateDate|deletionDate|expirationDate))*$"
    )]
    pub sort: Option<String>,
    /// Key Protect's filter expression: not supported, a non-empty value
    /// is refused (400 `INVALID_QUERY_PARAM_ERR`) rather than ignored.
    pub filter: Option<String>,
    /// `true`: `metadata.totalCount` says how many keys match in all.
    pub total_count: Option<bool>,
}

fn names(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.to_vec()))
        .build()
}

fn action_name() -> Object {
    names(&ACTIONS.iter().map(|a| a.name).collect::<Vec<_>>())
}

fn key_policy_name() -> Object {
    names(&["rotation", "dualAuthDelete"])
}

fn instance_policy_name() -> Object {
    names(&[
        "allowedIP",
        "allowedNetwork",
        "dualAuthDelete",
        "keyCreateImportAccess",
    ])
}

/// Named string schemas whose values are listed by a function.
macro_rules! named_strings {
    ($($(#[$meta:meta])* $name:ident = $values:path;)*) => {$(
        $(#[$meta])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                Schema::Object($values()).into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

named_strings! {
    /// An action on a key.
    ActionName = action_name;
    /// A key policy type.
    KeyPolicyName = key_policy_name;
    /// An instance policy type.
    InstancePolicyName = instance_policy_name;
    /// Where an approval without an outcome stands.
    ApprovalWord = approval_word;
}

/// A byte stream (`type: string, format: binary`).
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Binary {}

/// The body of the deprecated `POST /keys/{id}?action=`: the body of the
/// action named.
pub struct ActionBody;

impl PartialSchema for ActionBody {
    fn schema() -> RefOr<Schema> {
        let mut any = utoipa::openapi::schema::AnyOf::new();
        for name in ["WrapBody", "UnwrapBody", "RotateBody"] {
            any.items.push(Ref::from_schema_name(name).into());
        }
        Schema::AnyOf(any).into()
    }
}

impl ToSchema for ActionBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.extend([
            ("WrapBody".to_string(), super::keys::WrapBody::schema()),
            ("UnwrapBody".to_string(), super::keys::UnwrapBody::schema()),
            ("RotateBody".to_string(), super::keys::RotateBody::schema()),
        ]);
    }
}

// ------------------------------------------------------------ error body

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

fn approval_word() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["pending", "cancelled", "expired"]))
        .build()
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

/// `GET /ready` when some instance is sealed.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    #[schema(schema_with = status_sealed)]
    pub status: String,
    #[schema(min_items = 1)]
    pub sealed_instances: Vec<String>,
}

// ------------------------------------------------------------- actions

/// What an action answers on success.
enum ActionAnswer {
    /// 200 with this schema and media type.
    Json(&'static str, &'static str),
    /// 204, or 200 with the key under `prefer: return=representation`.
    KeyOrNoContent,
    /// 204 only.
    NoContent,
}

/// One `POST /keys/{id}/actions/{action}` operation.
struct Action {
    name: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    role: &'static str,
    /// The body's schema name and whether the body may be omitted.
    body: Option<(&'static str, bool)>,
    answer: ActionAnswer,
    /// Whether it uses the HSM (and so answers 503 on a sealed instance).
    crypto: bool,
    receipt: bool,
}

const ACTIONS: &[Action] = &[
    Action {
        name: "wrap",
        operation_id: "wrapKey",
        summary: "Wrap a data key (or generate one) with a root key",
        role: "writer",
        body: Some(("WrapBody", true)),
        answer: ActionAnswer::Json("WrapResult", "application/vnd.ibm.kms.key_action_wrap+json"),
        crypto: true,
        receipt: true,
    },
    Action {
        name: "unwrap",
        operation_id: "unwrapKey",
        summary: "Unwrap a data key",
        role: "writer",
        body: Some(("UnwrapBody", false)),
        answer: ActionAnswer::Json(
            "UnwrapResult",
            "application/vnd.ibm.kms.key_action_unwrap+json",
        ),
        crypto: true,
        receipt: true,
    },
    Action {
        name: "rewrap",
        operation_id: "rewrapKey",
        summary: "Wrap a data key again under the key's newest version",
        role: "writer",
        body: Some(("UnwrapBody", false)),
        answer: ActionAnswer::Json(
            "RewrapResult",
            "application/vnd.ibm.kms.key_action_rewrap+json",
        ),
        crypto: true,
        receipt: true,
    },
    Action {
        name: "rotate",
        operation_id: "rotateKey",
        summary: "Rotate a key: add a version (imported keys: with a new payload)",
        role: "writer",
        body: Some(("RotateBody", true)),
        answer: ActionAnswer::KeyOrNoContent,
        crypto: true,
        receipt: true,
    },
    Action {
        name: "enable",
        operation_id: "enableKey",
        summary: "Enable a disabled key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "disable",
        operation_id: "disableKey",
        summary: "Disable (suspend) a key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "setKeyForDeletion",
        operation_id: "setKeyForDeletion",
        summary: "First authorisation to delete a dual-authorisation key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "unsetKeyForDeletion",
        operation_id: "unsetKeyForDeletion",
        summary: "Cancel the authorisation to delete a key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "restore",
        operation_id: "restoreKeyAction",
        summary: "Restore a deleted key (as `POST /keys/{id}/restore`)",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "sync",
        operation_id: "syncAssociatedResources",
        summary: "Sync the resources associated with a key (keyledger has none: checks the key exists)",
        role: "reader",
        body: None,
        answer: ActionAnswer::NoContent,
        crypto: false,
        receipt: false,
    },
];

/// The action names `POST /keys/{id}/actions/{action}` and
/// `POST /keys/{id}?action=` accept.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|a| a.name)
}

/// The error responses: component name, status, and the only reason
/// codes the server answers with that status (empty: several).
const ERROR_RESPONSES: &[(&str, u16, &[&str])] = &[
    ("BadRequest", 400, &[]),
    ("Unauthorized", 401, &["UNAUTHORIZED_ERR"]),
    ("Forbidden", 403, &[]),
    ("NotFound", 404, &[]),
    ("Conflict", 409, &[]),
    ("Gone", 410, &["KEY_DELETED_ERR"]),
    ("PayloadTooLarge", 413, &["BODY_TOO_LARGE_ERR"]),
    ("UnsupportedMediaType", 415, &["BAD_BODY_ERR"]),
    (
        "Unprocessable",
        422,
        &["KEY_INVALID_STATE_ERR", "UNPROCESSABLE_CIPHERTEXT_ERR"],
    ),
    ("InternalError", 500, &["INTERNAL_SERVER_ERROR"]),
    ("Unavailable", 503, &["INSTANCE_SEALED_ERR"]),
];

fn error_ref(status: u16) -> (String, RefOr<Response>) {
    let name = ERROR_RESPONSES
        .iter()
        .find(|(_, s, _)| *s == status)
        .map_or("InternalError", |(name, _, _)| name);
    (status.to_string(), Ref::from_response_name(name).into())
}

/// The body of an error answer with `status`: Key Protect's error body
/// whose reason carries that status (and one of `codes`, when given) and
/// whose `errorMsg` starts with the status's reason phrase (`errors.rs`).
fn error_schema(status: u16, codes: &[&str]) -> RefOr<Schema> {
    let phrase = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Internal Server Error");
    let mut reason = ObjectBuilder::new().property(
        "status",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some([status])),
    );
    if !codes.is_empty() {
        reason = reason.property("code", names(codes));
    }
    let resource = ObjectBuilder::new()
        .property(
            "errorMsg",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^{phrase}: "))),
        )
        .property(
            "reasons",
            utoipa::openapi::schema::ArrayBuilder::new().items(reason),
        );
    let body = ObjectBuilder::new().property(
        "resources",
        utoipa::openapi::schema::ArrayBuilder::new().items(resource),
    );
    utoipa::openapi::schema::AllOfBuilder::new()
        .item(Ref::from_schema_name("ErrorBody"))
        .item(body)
        .into()
}

fn header(schema: impl Into<RefOr<Schema>>, description: &str) -> Header {
    let mut h = Header::new(schema);
    h.description = Some(description.to_string());
    h
}

fn with_receipt(mut response: Response, receipt: bool) -> Response {
    if receipt {
        response.headers.insert(
            "keyledger-receipt-seq".into(),
            header(u64::schema(), RECEIPT_SEQ).into(),
        );
        response.headers.insert(
            "keyledger-receipt-leaf".into(),
            header(String::schema(), RECEIPT_LEAF).into(),
        );
    }
    response
}

fn json_content(schema: &str) -> Content {
    Content::new(Some(Ref::from_schema_name(schema)))
}

fn action_operation(a: &Action) -> Operation {
    let mut op = Operation::new();
    op.tags = Some(vec!["actions".into()]);
    op.operation_id = Some(a.operation_id.into());
    op.summary = Some(a.summary.into());
    op.description = Some(format!(
        "Role: {}. Served by `POST /api/v2/keys/{{id}}/actions/{{action}}` with `action` = `{}`; the deprecated `POST /api/v2/keys/{{id}}?action={}` does the same.",
        a.role, a.name, a.name
    ));
    let mut params: Vec<Parameter> = InstanceHeader::into_params(|| Some(ParameterIn::Header));
    params.extend(KeyId::into_params(|| Some(ParameterIn::Path)));
    if matches!(a.answer, ActionAnswer::KeyOrNoContent) {
        params.extend(PreferHeader::into_params(|| Some(ParameterIn::Header)));
    }
    op.parameters = Some(params.into_iter().map(RefOr::T).collect());
    if let Some((schema, optional)) = a.body {
        let mut body = RequestBody::new();
        body.content
            .insert("application/json".into(), json_content(schema).into());
        body.content
            .insert(KEY_ACTION_MEDIA.into(), json_content(schema).into());
        body.required = Some(if optional {
            Required::False
        } else {
            Required::True
        });
        if optional {
            body.description = Some("May be omitted (an empty body).".into());
        }
        op.request_body = Some(body.into());
    }
    op.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    let mut responses = BTreeMap::new();
    match &a.answer {
        ActionAnswer::Json(schema, media) => {
            let mut ok = Response::new("Done; the event is durable.");
            ok.content
                .insert((*media).into(), json_content(schema).into());
            responses.insert("200".to_string(), with_receipt(ok, a.receipt).into());
        }
        ActionAnswer::KeyOrNoContent => {
            let mut ok = Response::new("With `prefer: return=representation`: the key.");
            ok.content
                .insert(KEY_MEDIA.into(), json_content("KeyCollection").into());
            responses.insert("200".to_string(), with_receipt(ok, a.receipt).into());
            let none = Response::new("Done (the default, `return=minimal`).");
            responses.insert("204".to_string(), with_receipt(none, a.receipt).into());
        }
        ActionAnswer::NoContent => {
            let none = Response::new("The key exists; nothing to sync.");
            responses.insert("204".to_string(), with_receipt(none, a.receipt).into());
        }
    }
    let mut statuses = vec![400, 401, 403, 404];
    if a.body.is_some() {
        statuses.extend([413, 415]);
    }
    if a.name != "sync" {
        statuses.extend([409, 410, 422, 500]);
    }
    if a.crypto {
        statuses.push(503);
    }
    for s in statuses {
        let (k, v) = error_ref(s);
        responses.insert(k, v);
    }
    op.responses.responses = responses.into_iter().collect();
    op
}

/// Adds the ten action operations.
struct ActionOperations;

impl Modify for ActionOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for a in ACTIONS {
            let path = format!("/api/v2/keys/{{id}}/actions/{}", a.name);
            openapi
                .paths
                .add_path_operation(path, vec![HttpMethod::Post], action_operation(a));
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, schema) in [
            ("WrapBody", super::keys::WrapBody::schema()),
            ("UnwrapBody", super::keys::UnwrapBody::schema()),
            ("RotateBody", super::keys::RotateBody::schema()),
        ] {
            components.schemas.insert(name.into(), schema);
        }
    }
}

const RECEIPT_SEQ: &str = "The sequence number of the event this request appended: ask `GET /api/v2/ledger/proofs/inclusion?seq=` for its proof.";
const RECEIPT_LEAF: &str = "That event's RFC 9162 leaf hash, hex.";

/// Bearer scheme, `correlation-id` everywhere, links from a created key.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "An API token of the instance named by `bluemix-instance`, issued by administrator command (`credential.issue`) with a role: reader, writer, manager or auditor.".into(),
        );
        components
            .security_schemes
            .insert("bearer".into(), SecurityScheme::Http(bearer).into());
        for response in components.responses.values_mut() {
            if let RefOr::T(r) = response {
                add_correlation_header(r);
            }
        }
        for (name, status, codes) in ERROR_RESPONSES {
            if let Some(RefOr::T(r)) = components.responses.get_mut(*name) {
                for content in r.content.values_mut() {
                    if let RefOr::T(content) = content {
                        content.schema = Some(error_schema(*status, codes));
                    }
                }
            }
        }
        // `POST /keys` and `/keys_with_policy_overrides` take exactly one
        // key (`create_with`: `[NewKey; 1]`).
        if let Some(RefOr::T(Schema::Object(body))) =
            components.schemas.get_mut("CollectionBody_NewKey")
            && let Some(RefOr::T(Schema::Array(resources))) = body.properties.get_mut("resources")
        {
            resources.min_items = Some(1);
            resources.max_items = Some(1);
        }
        let correlation = {
            let mut p = Parameter::new("correlation-id");
            p.parameter_in = ParameterIn::Header;
            p.required = Required::False;
            p.description = Some("The request's correlation id: kept when it is a clean token (at most 128 characters), otherwise a new one is made; either way it is in the response, the access log and the events.".into());
            p.schema = Some(String::schema());
            p
        };
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                let params = op.parameters.get_or_insert_with(Vec::new);
                for p in params.iter_mut() {
                    if let RefOr::T(p) = p
                        && let Some(schema) = p.schema.as_mut()
                    {
                        not_null(schema);
                    }
                }
                params.push(RefOr::T(correlation.clone()));
                if let Some(RefOr::T(body)) = op.request_body.as_mut()
                    && body.required != Some(Required::True)
                {
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content
                            && let Some(schema) = content.schema.as_mut()
                        {
                            not_null(schema);
                        }
                    }
                }
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(r) = response {
                        add_correlation_header(r);
                    }
                }
            }
        }
        // `POST /keys/{id}?action=` is Key Protect's deprecated form.
        if let Some(op) = openapi
            .paths
            .paths
            .get_mut("/api/v2/keys/{id}")
            .and_then(|item| item.post.as_mut())
        {
            op.deprecated = Some(utoipa::openapi::Deprecated::True);
        }
        link_created_key(openapi);
    }
}

/// utoipa writes `Option<T>` as "T or null". A parameter (a header or
/// query string, never JSON) and an optional request body are absent when
/// not given, never `null` (the server refuses a `null` body), so their
/// schemas say just T.
fn not_null(schema: &mut RefOr<Schema>) {
    let replacement = match schema {
        RefOr::T(Schema::Object(o)) => {
            if let utoipa::openapi::schema::SchemaType::Array(types) = &o.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                if let [only] = kept.as_slice() {
                    o.schema_type = utoipa::openapi::schema::SchemaType::Type(only.clone());
                }
            }
            None
        }
        RefOr::T(Schema::OneOf(one)) => {
            let kept: Vec<RefOr<Schema>> = one
                .items
                .iter()
                .filter(|s| {
                    !matches!(s, RefOr::T(Schema::Object(o))
                        if o.schema_type == utoipa::openapi::schema::SchemaType::Type(Type::Null))
                })
                .cloned()
                .collect();
            match kept.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(r) = replacement {
        *schema = r;
    }
}

fn add_correlation_header(r: &mut Response) {
    r.headers.insert(
        "correlation-id".into(),
        header(
            String::schema(),
            "The request's correlation id (the client's, or a new one).",
        )
        .into(),
    );
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<&mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Links from `createKey`'s answer to every operation on `/keys/{id}...`,
/// so a client (and schemathesis' stateful phase) can follow a created
/// key's id.
fn link_created_key(openapi: &mut utoipa::openapi::OpenApi) {
    let mut targets = Vec::new();
    for (path, item) in openapi.paths.paths.iter_mut() {
        if !path.starts_with("/api/v2/keys/{id}") || path.contains("{alias}") {
            continue;
        }
        for op in operations(item) {
            if let Some(id) = &op.operation_id {
                targets.push(id.clone());
            }
        }
    }
    for path in ["/api/v2/keys", "/api/v2/keys_with_policy_overrides"] {
        let Some(item) = openapi.paths.paths.get_mut(path) else {
            continue;
        };
        let Some(op) = item.post.as_mut() else {
            continue;
        };
        let Some(RefOr::T(created)) = op.responses.responses.get_mut("201") else {
            continue;
        };
        for target in &targets {
            let link = utoipa::openapi::link::LinkBuilder::new()
                .operation_id(target)
                .parameter("id", "$response.body#/resources/0/id")
                .build();
            created.links.insert(target.clone(), link.into());
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keyledger",
        description = "The IBM Key Protect API v2 as keyledger serves it, plus keyledger's auditor (`/api/v2/ledger`) and governance (`/api/v2/admin`) endpoints and its operations endpoints. Generated from the code (`src/server/openapi.rs`); see `docs/REST.md`.\n\nEvery error is Key Protect's error body (`application/vnd.ibm.kms.error+json`). Request bodies are `application/json` or `application/vnd.ibm.kms.*+json`. Responses to requests that append an event carry `keyledger-receipt-seq` and `keyledger-receipt-leaf`."
    ),
    paths(
        super::health,
        super::ready,
        super::metrics_text,
        serve,
        super::keys::list,
        super::keys::head,
        super::keys::create,
        super::keys::create_with_policy_overrides,
        super::keys::get,
        super::keys::action_query,
        super::rings_aliases::patch_key,
        super::keys::delete,
        super::keys::metadata,
        super::keys::versions,
        super::keys::purge,
        super::keys::restore,
        super::policies::get_key_policies,
        super::policies::put_key_policies,
        super::policies::get_instance_policies,
        super::policies::put_instance_policies,
        super::policies::allowed_ip_port,
        super::import_tokens::create,
        super::import_tokens::get,
        super::rings_aliases::create_alias,
        super::rings_aliases::delete_alias,
        super::rings_aliases::list_key_rings,
        super::rings_aliases::create_key_ring,
        super::rings_aliases::delete_key_ring,
        super::registrations::all,
        super::registrations::of_key,
        super::ledger_api::checkpoint,
        super::ledger_api::records,
        super::ledger_api::inclusion,
        super::ledger_api::consistency,
        super::ledger_api::bundle,
        super::admin_api::submit_command,
        super::admin_api::ceremony_status,
        super::admin_api::submit_part,
        super::admin_api::state,
    ),
    components(
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            Gone,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            InternalError,
            Unavailable
        ),
        schemas(
            ErrorBody,
            WrapResult,
            UnwrapResult,
            RewrapResult,
            KeyCollection,
            ActionName,
            KeyPolicyName,
            InstancePolicyName
        )
    ),
    modifiers(&ActionOperations, &Conventions),
    tags(
        (name = "keys", description = "Key Protect keys"),
        (name = "actions", description = "Key Protect key actions"),
        (name = "policies", description = "Key and instance policies"),
        (name = "import tokens", description = "Secure import"),
        (name = "key rings and aliases"),
        (name = "registrations"),
        (name = "ledger", description = "Auditor endpoints (role `auditor`)"),
        (name = "admin", description = "Governance: signed administrator commands and the master-key ceremony"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as committed: pretty JSON and a final newline.
pub fn document_json() -> Result<String, serde_json::Error> {
    document().to_pretty_json().map(|mut s| {
        s.push('\n');
        s
    })
}

static DOCUMENT: OnceLock<Option<String>> = OnceLock::new();

/// `GET /api/v2/openapi.json`: this document (no authentication).
#[utoipa::path(
    get,
    path = "/api/v2/openapi.json",
    tag = "operations",
    operation_id = "getOpenApiDocument",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document (`schemas/openapi.json`).", content_type = "application/json", body = Object),
    )
)]
pub async fn serve() -> Result<HttpResponse, ApiError> {
    let doc = DOCUMENT
        .get_or_init(|| document_json().ok())
        .clone()
        .ok_or_else(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(doc))
}
