//! Tests of import tokens: the Key Protect client scheme and every refusal.

use super::*;
use rsa::pkcs8::DecodePublicKey;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn token(now: DateTime<Utc>) -> ImportToken {
    ImportToken::create_with_key_bits(&ImportTokenRequest::default(), now, 2048).expect("token")
}

/// What a Key Protect client does with the token contents.
fn client_encrypt(
    contents: &ImportTokenContents,
    key: &[u8],
    iv: &[u8],
) -> (String, String, String) {
    let pem = b64().decode(&contents.payload).expect("payload b64");
    let pem = String::from_utf8(pem).expect("pem utf8");
    let public = PublicKey::from_public_key_pem(&pem).expect("pem");
    let encrypted_key = public.oaep_encrypt::<Sha256>(key).expect("oaep");
    let nonce = b64().decode(&contents.nonce).expect("nonce b64");
    let iv_arr = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(iv).expect("iv");
    let sealed = match key.len() {
        16 => Aes128Gcm::new_from_slice(key)
            .expect("k")
            .encrypt(&iv_arr, nonce.as_slice()),
        24 => Aes192Gcm::new_from_slice(key)
            .expect("k")
            .encrypt(&iv_arr, nonce.as_slice()),
        _ => Aes256Gcm::new_from_slice(key)
            .expect("k")
            .encrypt(&iv_arr, nonce.as_slice()),
    }
    .expect("gcm");
    (
        b64().encode(encrypted_key),
        b64().encode(sealed),
        b64().encode(iv),
    )
}

#[test]
fn parameters_are_bounded_with_key_protect_defaults() {
    let now = t("2026-01-01T00:00:00Z");
    let mut tok = token(now);
    let meta = tok.metadata();
    assert_eq!(meta.expiration_date, "2026-01-01T00:10:00Z");
    assert_eq!(
        (meta.max_allowed_retrievals, meta.remaining_retrievals),
        (1, 1)
    );
    for (expiration_secs, max_retrievals) in [
        (Some(299), None),
        (Some(86_401), None),
        (None, Some(0)),
        (None, Some(501)),
    ] {
        let req = ImportTokenRequest {
            expiration_secs,
            max_retrievals,
        };
        let e = ImportToken::create_with_key_bits(&req, now, 2048).expect_err("refused");
        assert_eq!(e.reason(), Reason::InvalidField);
    }
    let contents = tok.retrieve(now).expect("first retrieval");
    assert_eq!(contents.metadata.remaining_retrievals, 0);
    assert!(
        tok.public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    assert_eq!(
        b64().decode(&contents.nonce).expect("nonce").len(),
        NONCE_LEN
    );
    assert_eq!(tok.public_key_digest().len(), 64);
    let json = serde_json::to_value(&contents).expect("json");
    for field in [
        "id",
        "creationDate",
        "expirationDate",
        "maxAllowedRetrievals",
        "remainingRetrievals",
        "payload",
        "nonce",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    assert!(!format!("{tok:?}").contains("BEGIN"));
}

#[test]
fn retrievals_run_out_and_tokens_expire() {
    let now = t("2026-01-01T00:00:00Z");
    let req = ImportTokenRequest {
        expiration_secs: Some(300),
        max_retrievals: Some(2),
    };
    let mut tok = ImportToken::create_with_key_bits(&req, now, 2048).expect("token");
    tok.retrieve(now).expect("1");
    tok.retrieve(now).expect("2");
    assert_eq!(tok.retrieve(now), Err(ImportError::RetrievalsExhausted));
    let mut tok = ImportToken::create_with_key_bits(&req, now, 2048).expect("token");
    let e = tok
        .retrieve(t("2026-01-01T00:05:00Z"))
        .expect_err("expired");
    assert_eq!(e.reason(), Reason::ImportTokenExpired);
}

#[test]
fn open_accepts_the_key_protect_scheme_for_each_key_size() {
    let now = t("2026-01-01T00:00:00Z");
    let mut tok = token(now);
    let contents = tok.retrieve(now).expect("retrieve");
    for len in KEY_SIZES {
        let key: Vec<u8> = (0..len as u8).collect();
        let (payload, enc_nonce, iv) = client_encrypt(&contents, &key, &[9u8; 12]);
        let opened = tok.open(&payload, &enc_nonce, &iv, now).expect("open");
        assert_eq!(opened.expose(), key.as_slice());
    }
}

#[test]
fn open_refuses_every_bad_request() {
    let now = t("2026-01-01T00:00:00Z");
    let mut tok = token(now);
    let contents = tok.retrieve(now).expect("retrieve");
    let key = [7u8; 32];
    let (payload, enc_nonce, iv) = client_encrypt(&contents, &key, &[1u8; 12]);

    // Expired token.
    let e = tok
        .open(&payload, &enc_nonce, &iv, t("2026-01-01T00:10:00Z"))
        .expect_err("expired");
    assert_eq!(e, ImportError::Expired);

    // Bad OAEP padding: a flipped ciphertext byte, or another token's key.
    let mut raw = b64().decode(&payload).expect("b64");
    raw[10] ^= 1;
    assert_eq!(
        tok.open(&b64().encode(&raw), &enc_nonce, &iv, now),
        Err(ImportError::Unwrap)
    );
    let mut other = token(now);
    let other_contents = other.retrieve(now).expect("retrieve");
    let (other_payload, _, _) = client_encrypt(&other_contents, &key, &[1u8; 12]);
    assert_eq!(
        tok.open(&other_payload, &enc_nonce, &iv, now),
        Err(ImportError::Unwrap)
    );

    // Wrong key size (RSA-wrapped 20 bytes).
    let (p20, n20, iv20) = {
        let pem = String::from_utf8(b64().decode(&contents.payload).expect("b64")).expect("utf8");
        let public = PublicKey::from_public_key_pem(&pem).expect("pem");
        let enc = public.oaep_encrypt::<Sha256>(&[3u8; 20]).expect("oaep");
        (b64().encode(enc), enc_nonce.clone(), iv.clone())
    };
    assert_eq!(
        tok.open(&p20, &n20, &iv20, now),
        Err(ImportError::KeySize(20))
    );

    // Nonce encrypted under another key, or with another IV.
    let (_, wrong_key_nonce, _) = client_encrypt(&contents, &[8u8; 32], &[1u8; 12]);
    let e = tok
        .open(&payload, &wrong_key_nonce, &iv, now)
        .expect_err("wrong key");
    assert_eq!(e.reason(), Reason::NonceIvMismatch);
    let other_iv = b64().encode([2u8; 12]);
    assert_eq!(
        tok.open(&payload, &enc_nonce, &other_iv, now),
        Err(ImportError::NonceDecrypt)
    );

    // Right key, but another nonce.
    let (_, other_nonce, _) = client_encrypt(&other_contents, &key, &[1u8; 12]);
    let e = tok
        .open(&payload, &other_nonce, &iv, now)
        .expect_err("wrong nonce");
    assert_eq!(e.reason(), Reason::WrongNonce);

    // Malformed fields.
    assert!(matches!(
        tok.open("%%%", &enc_nonce, &iv, now),
        Err(ImportError::InvalidField {
            field: "payload",
            ..
        })
    ));
    assert!(matches!(
        tok.open(&payload, &enc_nonce, &b64().encode([0u8; 16]), now),
        Err(ImportError::InvalidField { field: "iv", .. })
    ));
    assert!(matches!(
        tok.open(&"A".repeat(4096), &enc_nonce, &iv, now),
        Err(ImportError::InvalidField { .. })
    ));
}

#[test]
fn key_sizes_below_2048_are_refused() {
    let now = t("2026-01-01T00:00:00Z");
    assert!(ImportToken::create_with_key_bits(&ImportTokenRequest::default(), now, 1024).is_err());
}
