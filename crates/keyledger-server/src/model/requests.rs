//! The request bodies of the key actions (`wrap`, `unwrap`, `rewrap`,
//! `rotate`, `restore`): what `keys.rs` parses and what the OpenAPI
//! document's `ActionBody` lists.

use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

/// Key Protect's restore body for an imported key: its key material, as a
/// `payload` or a secure import against the import token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreKey {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    pub kind: Option<String>,
    /// The key's current material (base64), or with `encryptedNonce` and
    /// `iv` that material encrypted to the import token.
    pub payload: Option<String>,
    pub encrypted_nonce: Option<String>,
    pub iv: Option<String>,
    pub encryption_algorithm: Option<String>,
}

/// A restore body: Key Protect's collection of one key resource.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    #[allow(dead_code)]
    pub metadata: Option<Value>,
    /// Exactly one.
    #[schema(min_items = 1, max_items = 1)]
    pub resources: Vec<RestoreKey>,
}

/// `wrap`: the data key to wrap (base64), or none to have one generated.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapBody {
    /// 1-5376 bytes, base64.
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$",
        min_length = 4,
        max_length = 7168,
        value_type = Option<String>
    )]
    pub plaintext: Option<Zeroizing<String>>,
    /// Additional authenticated data: at most 126 strings of at most 255
    /// characters, needed again to unwrap.
    #[serde(default)]
    #[schema(max_items = 126)]
    pub aad: Vec<String>,
}

/// `unwrap` and `rewrap`: a ciphertext from `wrap` and the same AAD.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnwrapBody {
    /// The `ciphertext` a wrap answered.
    pub ciphertext: String,
    /// The AAD given to wrap.
    #[serde(default)]
    #[schema(max_items = 126)]
    pub aad: Vec<String>,
}

/// `rotate`: for an imported key, the new key material (base64).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// An AES key of 16, 24 or 32 bytes, base64.
    #[schema(
        pattern = r"^(?:(?:[A-Za-z0-9+/]{4}){5}[A-Za-z0-9+/][AQgw]==|(?:[A-Za-z0-9+/]{4}){8}|(?:[A-Za-z0-9+/]{4}){10}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$",
        value_type = Option<String>
    )]
    pub payload: Option<Zeroizing<String>>,
}
