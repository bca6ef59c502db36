//! Parameters of the OpenAPI document: the headers every endpoint takes,
//! path and query parameters, and the named schemas they refer to.

use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::actions::ACTIONS;
use super::requests::{RestoreBody, RestoreKey, RotateBody, UnwrapBody, WrapBody};

/// Headers of every Key Protect, auditor and admin endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct InstanceHeader {
    /// The instance (keystore) the request is for. Missing: 400
    /// `INVALID_HEADER_ERR`; unknown: the same 401 as a wrong token.
    #[param(rename = "bluemix-instance", min_length = 1)]
    pub bluemix_instance: String,
}

/// A key owner's signed request for the ceremony status: the owner, the
/// time, and the owner's ed25519 signature over
/// `ceremony_status_message(instance, owner, time)` (`docs/REST.md`).
/// Missing, or not a registered owner's valid signature within 5 minutes
/// of the server's clock: the same 401 as an unknown instance. Present but
/// malformed: 400 `INVALID_HEADER_ERR`.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct KeyOwnerHeaders {
    /// The key owner's id, as registered by `key_owner.register`.
    #[param(rename = "keyledger-key-owner", min_length = 1)]
    pub owner: String,
    /// The request's time, whole seconds since the Unix epoch.
    #[param(rename = "keyledger-key-owner-time", pattern = r"^-?[0-9]{1,19}$")]
    pub time: String,
    /// The owner's ed25519 signature (64 bytes, base64).
    #[param(
        rename = "keyledger-key-owner-signature",
        pattern = r"^[A-Za-z0-9+/]{86}[AQgw]==$"
    )]
    pub signature: String,
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

/// The key ring a request is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyRingId {
    /// The key ring: 2-100 characters of letters, digits and `-`.
    #[param(pattern = r"^[A-Za-z0-9-]{2,100}$")]
    pub id: String,
}

/// The alias a request is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AliasName {
    /// 2-90 characters of letters, digits, `-` and `_`; not a UUID, not `registrations`.
    #[param(pattern = r"^[A-Za-z0-9_-]{2,90}$")]
    pub alias: String,
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
    /// Key Protect's filter expression: space-separated terms
    /// `property=value` or `property=op:value` over `creationDate`,
    /// `deletionDate`, `expirationDate`, `lastRotateDate`, `lastUpdateDate`
    /// (quoted RFC 3339 dates or `none`; ops `lt`, `lte`, `gt`, `gte`),
    /// `extractable` (`true`/`false`) and `state` (comma-separated 0,1,2,3,5).
    /// A malformed filter, or `state`/`extractable` given both here and as
    /// their own parameter, is refused (400 `INVALID_QUERY_PARAM_ERR`).
    pub filter: Option<String>,
    /// `true`: `metadata.totalCount` says how many keys match in all.
    pub total_count: Option<bool>,
}

pub(crate) fn names(values: &[&str]) -> Object {
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

fn approval_word() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ApprovalWord::ALL.map(ApprovalWord::word)))
        .build()
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
}

/// Where an approval without an outcome stands: serialised as its
/// [`word`](Self::word), the words the schema lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalWord {
    Pending,
    Cancelled,
    Expired,
}

impl ApprovalWord {
    /// Every word, in the schema's order.
    pub const ALL: [ApprovalWord; 3] = [
        ApprovalWord::Pending,
        ApprovalWord::Cancelled,
        ApprovalWord::Expired,
    ];

    /// `pending`, `cancelled` or `expired`.
    pub fn word(self) -> &'static str {
        match self {
            ApprovalWord::Pending => "pending",
            ApprovalWord::Cancelled => "cancelled",
            ApprovalWord::Expired => "expired",
        }
    }
}

impl serde::Serialize for ApprovalWord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.word())
    }
}

impl PartialSchema for ApprovalWord {
    fn schema() -> RefOr<Schema> {
        Schema::Object(approval_word()).into()
    }
}

impl ToSchema for ApprovalWord {}

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
        for name in ["WrapBody", "UnwrapBody", "RotateBody", "RestoreBody"] {
            any.items.push(Ref::from_schema_name(name).into());
        }
        Schema::AnyOf(any).into()
    }
}

impl ToSchema for ActionBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.extend([
            ("WrapBody".to_string(), WrapBody::schema()),
            ("UnwrapBody".to_string(), UnwrapBody::schema()),
            ("RotateBody".to_string(), RotateBody::schema()),
            ("RestoreBody".to_string(), RestoreBody::schema()),
            ("RestoreKey".to_string(), RestoreKey::schema()),
        ]);
    }
}
