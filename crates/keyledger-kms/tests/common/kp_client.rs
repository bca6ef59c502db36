//! The client side of Key Protect's secure import, written the way IBM's
//! SDKs do it (`kp.EncryptKey`, `kp.EncryptNonce`) and independently of the
//! server code: the key material is encrypted with RSAES-OAEP (SHA-256,
//! MGF1-SHA-256, empty label) to the PEM public key of the token, and the
//! token's nonce with AES-GCM under that key material (12-byte random IV,
//! no associated data, 16-byte tag appended). Everything in and out is
//! base64, as in the REST API. One copy, shared with the root package's
//! tests (by `#[path]`).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;

use keyledger_kms::import_token::ImportTokenContents;
use keyledger_kms::service::TokenImport;

type Aes192Gcm = AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// The RSA public key of `GET /import_token`'s `payload` (base64 of PEM).
pub fn public_key(contents: &ImportTokenContents) -> rsa::PublicKey {
    let pem = STANDARD
        .decode(&contents.payload)
        .expect("payload is base64");
    let pem = String::from_utf8(pem).expect("payload is PEM text");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    rsa::PublicKey::from_public_key_pem(&pem).expect("SPKI PEM")
}

/// `EncryptKey`: base64 of RSA-OAEP-SHA-256(key).
pub fn encrypt_key(contents: &ImportTokenContents, key: &[u8]) -> String {
    let encrypted = public_key(contents)
        .oaep_encrypt::<Sha256>(key)
        .expect("OAEP encrypt");
    STANDARD.encode(encrypted)
}

/// `EncryptNonce`: base64 of AES-GCM(key, iv, nonce) and of the IV.
pub fn encrypt_nonce(nonce: &[u8], key: &[u8], iv: [u8; 12]) -> (String, String) {
    let gcm_iv = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::from(iv);
    let sealed = match key.len() {
        16 => Aes128Gcm::new_from_slice(key)
            .expect("AES-128 key")
            .encrypt(&gcm_iv, nonce),
        24 => Aes192Gcm::new_from_slice(key)
            .expect("AES-192 key")
            .encrypt(&gcm_iv, nonce),
        _ => Aes256Gcm::new_from_slice(key)
            .expect("AES-256 key")
            .encrypt(&gcm_iv, nonce),
    }
    .expect("GCM encrypt");
    (STANDARD.encode(sealed), STANDARD.encode(iv))
}

/// The token's nonce, decoded.
pub fn nonce(contents: &ImportTokenContents) -> Vec<u8> {
    STANDARD.decode(&contents.nonce).expect("nonce is base64")
}

/// A random 12-byte IV, as the SDK generates.
pub fn random_iv() -> [u8; 12] {
    let mut iv = [0u8; 12];
    getrandom::getrandom(&mut iv).expect("rng");
    iv
}

/// Everything a client sends to import `key` with the token.
pub fn import_request(contents: &ImportTokenContents, key: &[u8]) -> TokenImport {
    let (encrypted_nonce, iv) = encrypt_nonce(&nonce(contents), key, random_iv());
    TokenImport {
        encrypted_payload: encrypt_key(contents, key),
        encrypted_nonce,
        iv,
    }
}
