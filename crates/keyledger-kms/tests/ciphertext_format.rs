//! The wrapped-DEK ciphertext format: known vectors (made independently by
//! `tests/vectors/ciphertext/generate.py` with pyca/cryptography's AES-GCM),
//! property tests of the encoding, and AEAD binding of header and caller AAD.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use keyledger_kms::ciphertext::{
    self, Ciphertext, CiphertextError, CiphertextHeader, NONCE_LEN, TAG_LEN,
};
// The reason a refusal names; its HTTP status is the server's mapping
// (tested with the server), so these tests pin the reason itself.
use keyledger_core::reason::Reason;
use proptest::prelude::*;
use serde_json::Value;

fn vectors(name: &str) -> Vec<Value> {
    // The vectors stay in the workspace root's `tests/vectors/`.
    let path = format!(
        "{}/../../tests/vectors/ciphertext/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("vector file");
    serde_json::from_str::<Value>(&text)
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// What the HSM does under the key version: AES-256-GCM, `nonce || ct || tag`.
fn open(key: &[u8], ct: &Ciphertext, caller_aad: &[String]) -> Option<Vec<u8>> {
    let (nonce, body) = ct.sealed.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new_from_slice(key).expect("key");
    let nonce = Nonce::try_from(nonce).expect("nonce");
    let aad = ciphertext::aad(&ct.header_bytes, caller_aad);
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .ok()
}

#[test]
fn valid_vectors_encode_decode_and_open() {
    let all = vectors("valid.json");
    assert!(all.len() >= 4);
    for v in all {
        let name = v["name"].as_str().expect("name");
        let header = CiphertextHeader {
            instance: v["instance"].as_str().expect("instance").into(),
            key_id: v["key_id"].as_str().expect("key_id").into(),
            key_version: u32::try_from(v["key_version"].as_u64().expect("version")).expect("u32"),
        };
        let sealed = hex(&v["sealed_hex"]);
        let caller = strings(&v["caller_aad"]);
        assert_eq!(
            header.encode().expect("header"),
            hex(&v["header_hex"]),
            "{name}"
        );
        let encoded = ciphertext::encode(&header, &sealed).expect("encode");
        assert_eq!(encoded, hex(&v["encoded_hex"]), "{name}");
        assert_eq!(
            ciphertext::encode_base64(&header, &sealed).expect("b64"),
            v["base64"].as_str().expect("base64"),
            "{name}"
        );
        let ct = ciphertext::decode_base64(v["base64"].as_str().expect("b64")).expect("decode");
        assert_eq!(ct.header, header, "{name}");
        assert_eq!(ct.sealed, sealed, "{name}");
        assert_eq!(
            ciphertext::aad(&ct.header_bytes, &caller),
            hex(&v["aad_hex"]),
            "{name}"
        );

        let key = hex(&v["key_hex"]);
        assert_eq!(open(&key, &ct, &caller), Some(hex(&v["dek_hex"])), "{name}");
        // Other caller AAD, or the same body under another header, fails.
        let mut other = caller.clone();
        other.push("x".into());
        assert_eq!(open(&key, &ct, &other), None, "{name}");
        let mut moved = ct.clone();
        moved.header_bytes = CiphertextHeader {
            key_id: format!("{}0", &ct.header.key_id[..ct.header.key_id.len().min(63)]),
            ..ct.header.clone()
        }
        .encode()
        .expect("header");
        assert_eq!(open(&key, &moved, &caller), None, "{name}");
        // Any single flipped byte fails to decode or fails to open.
        for i in 0..encoded.len() {
            let mut bad = encoded.clone();
            bad[i] ^= 0x01;
            if let Ok(ct2) = ciphertext::decode(&bad) {
                assert_eq!(
                    open(&key, &ct2, &caller),
                    None,
                    "{name}: flip at {i} opened"
                );
            }
        }
    }
}

#[test]
fn invalid_vectors_are_refused_with_their_reason() {
    let all = vectors("invalid.json");
    assert!(all.len() >= 10);
    for v in all {
        let name = v["name"].as_str().expect("name");
        let err = ciphertext::decode(&hex(&v["hex"])).expect_err(name);
        let variant = format!("{err:?}");
        let want = v["error"].as_str().expect("error");
        assert!(
            variant.starts_with(want),
            "{name}: got {variant}, want {want}"
        );
        assert_eq!(
            (err.reason().code(), err.reason()),
            (
                "UNPROCESSABLE_CIPHERTEXT_ERR",
                Reason::UnprocessableCiphertext
            )
        );
    }
}

fn id(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{1,{max}}}")).expect("regex")
}

fn arb_ciphertext() -> impl Strategy<Value = (CiphertextHeader, Vec<u8>)> {
    (
        id(64),
        id(64),
        1u32..=u32::MAX,
        prop::collection::vec(any::<u8>(), NONCE_LEN + TAG_LEN..200),
    )
        .prop_map(|(instance, key_id, key_version, sealed)| {
            (
                CiphertextHeader {
                    instance,
                    key_id,
                    key_version,
                },
                sealed,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip((header, sealed) in arb_ciphertext()) {
        let bytes = ciphertext::encode(&header, &sealed).expect("encode");
        let ct = ciphertext::decode(&bytes).expect("decode");
        prop_assert_eq!(&ct.header, &header);
        prop_assert_eq!(&ct.sealed, &sealed);
        prop_assert_eq!(&ct.header_bytes, &header.encode().expect("header"));
        let b64 = ciphertext::encode_base64(&header, &sealed).expect("b64");
        prop_assert_eq!(ciphertext::decode_base64(&b64).expect("decode b64"), ct);
    }

    #[test]
    fn trailing_bytes_and_every_truncation_are_refused(
        (header, sealed) in arb_ciphertext(),
        extra in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let bytes = ciphertext::encode(&header, &sealed).expect("encode");
        let mut longer = bytes.clone();
        longer.extend_from_slice(&extra);
        prop_assert_eq!(ciphertext::decode(&longer), Err(CiphertextError::TrailingBytes(extra.len())));
        for n in 0..bytes.len() {
            prop_assert!(ciphertext::decode(&bytes[..n]).is_err(), "prefix {} decoded", n);
        }
    }

    #[test]
    fn a_flipped_byte_never_keeps_header_and_body(
        (header, sealed) in arb_ciphertext(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        caller in prop::collection::vec("[ -~]{0,20}", 0..4),
    ) {
        let bytes = ciphertext::encode(&header, &sealed).expect("encode");
        let original = ciphertext::decode(&bytes).expect("decode");
        let mut flipped = bytes.clone();
        let i = at.index(flipped.len());
        flipped[i] ^= mask;
        if let Ok(ct) = ciphertext::decode(&flipped) {
            let same_aad = ciphertext::aad(&ct.header_bytes, &caller)
                == ciphertext::aad(&original.header_bytes, &caller);
            prop_assert!(!same_aad || ct.sealed != original.sealed, "flip at {} went unnoticed", i);
        }
    }

    #[test]
    fn aad_is_injective_in_the_caller_entries(
        a in prop::collection::vec("[a-c]{0,3}", 0..4),
        b in prop::collection::vec("[a-c]{0,3}", 0..4),
    ) {
        let header = b"KLW\x01header";
        prop_assert_eq!(ciphertext::aad(header, &a) == ciphertext::aad(header, &b), a == b);
    }
}
