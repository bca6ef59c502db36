//! The API's wire model: the media types, the parameters, the request
//! bodies, the answers (each one type both serialised by the handlers and
//! described by the OpenAPI document) and how answers are written
//! ([`answer_bytes`]), and the key actions. Handlers and the OpenAPI
//! document both depend on it; it depends on neither.

use serde::Serialize;
use zeroize::Zeroize;

/// Key Protect's error media type.
pub const ERROR_MEDIA: &str = "application/vnd.ibm.kms.error+json";
/// Key Protect's key media type.
pub const KEY_MEDIA: &str = "application/vnd.ibm.kms.key+json";
/// The media type of the action bodies (`POST /keys/{id}/actions/...`).
pub const KEY_ACTION_MEDIA: &str = "application/vnd.ibm.kms.key_action+json";

pub mod actions;
pub mod params;
pub mod requests;
pub mod shapes;

pub use params::*;
pub use shapes::*;

/// The bytes of an answer: `body` as compact JSON whose object members are
/// in the byte order of their names, at every level. The answers have been
/// written in that order since they were first built with `json!` (over
/// serde_json's sorted map), and Key Protect clients may depend on their
/// bytes; the fields of the [`shapes`] are declared in the order the OpenAPI
/// document lists them instead, so the body goes through a sorted
/// `serde_json::Value`. (The wrap, unwrap and rewrap results skip this:
/// their declared order is their wire order.)
pub fn answer_bytes<T: Serialize + ?Sized>(body: &T) -> serde_json::Result<Vec<u8>> {
    let mut tree = serde_json::to_value(body)?;
    tree.sort_all_objects();
    serde_json::to_vec(&tree)
}

/// [`answer_bytes`] of a body that carries key material: the strings of the
/// intermediate tree are wiped before it is freed (the answer's own bytes
/// belong to the HTTP layer).
pub fn secret_answer_bytes<T: Serialize + ?Sized>(body: &T) -> serde_json::Result<Vec<u8>> {
    let mut tree = serde_json::to_value(body)?;
    tree.sort_all_objects();
    let bytes = serde_json::to_vec(&tree);
    wipe(&mut tree);
    bytes
}

fn wipe(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(members) => members.values_mut().for_each(wipe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Inner {
        zeta: u8,
        #[serde(rename = "Alpha")]
        alpha: Option<u8>,
    }

    #[derive(Serialize)]
    struct Outer {
        #[serde(rename = "type")]
        kind: &'static str,
        inner: Inner,
        list: Vec<Inner>,
        #[serde(rename = "keyVersion")]
        key_version: u8,
        #[serde(rename = "keyRingID")]
        key_ring_id: u8,
    }

    /// Members sorted by the bytes of their names (upper case first), at
    /// every depth, whatever the declared order; `null` kept.
    #[test]
    fn answers_have_their_members_sorted_at_every_level() {
        let body = Outer {
            kind: "t",
            inner: Inner {
                zeta: 1,
                alpha: None,
            },
            list: vec![Inner {
                zeta: 2,
                alpha: Some(3),
            }],
            key_version: 4,
            key_ring_id: 5,
        };
        let expected = r#"{"inner":{"Alpha":null,"zeta":1},"keyRingID":5,"keyVersion":4,"list":[{"Alpha":3,"zeta":2}],"type":"t"}"#;
        assert_eq!(
            String::from_utf8(answer_bytes(&body).expect("json")).expect("utf8"),
            expected
        );
        assert_eq!(
            String::from_utf8(secret_answer_bytes(&body).expect("json")).expect("utf8"),
            expected
        );
    }
}
