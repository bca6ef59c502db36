//! Key Protect's secure import: an import token is an RSA key pair plus a
//! nonce. The client encrypts the key material to the token's public key
//! with RSAES-OAEP-SHA-256 (empty label, MGF1-SHA-256) and proves it holds
//! that key material by AES-GCM-encrypting the token's nonce under it with a
//! 12-byte IV (no associated data, 16-byte tag appended), as IBM's SDKs do
//! (`kp.EncryptKey`, `kp.EncryptNonce`). See `docs/KEYS.md`.
//!
//! The private key never leaves this type except as PKCS#8 DER in a
//! [`SecretBytes`] for the HSM backend to wrap ([`sealing`]): it is zeroized
//! on drop and never printed. The public key is returned as Key Protect
//! does: base64 of the PEM (`-----BEGIN PUBLIC KEY-----`, SPKI) text.
//!
//! - [`sealing`]: a token's private key and nonce wrapped under the instance
//!   master key (what the key-material store keeps), and back.
//! - [`projection`]: the instance's current token and its retrievals, from
//!   the log (`import_token.created`, `import_token.retrieved`).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use keyledger_core::reason::Reason;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
use serde::Serialize;
use sha2::Digest;

use crate::secret::{self, SecretBytes};

/// RSA modulus size of production import tokens.
pub const DEFAULT_KEY_BITS: usize = 4096;
/// Token lifetime bounds and default, seconds.
pub const MIN_EXPIRATION_SECS: u32 = 300;
pub const MAX_EXPIRATION_SECS: u32 = keyledger_core::decide::import_token::MAX_EXPIRATION_SECS;
pub const DEFAULT_EXPIRATION_SECS: u32 = 600;
/// Retrieval count bounds and default.
pub const MAX_RETRIEVALS: u32 = keyledger_core::decide::import_token::MAX_RETRIEVALS;
pub const DEFAULT_RETRIEVALS: u32 = 1;
/// Length of the token nonce (Key Protect's are 12 bytes).
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM IV the client must use.
pub const IV_LEN: usize = 12;
/// Key sizes the token's AES-GCM nonce proof can use (AES-128/192/256),
/// bytes. Whether the key may have that size is
/// [`keyledger_core::keys::payload::check`]'s to say, after the token opens.
pub const KEY_SIZES: [usize; 3] = keyledger_core::keys::payload::STANDARD_KEY_SIZES;

type Aes192Gcm = AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// Why a token could not be made, retrieved or used. Decryption failures
/// say nothing about the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("invalid {field}: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("the import token has expired")]
    Expired,
    #[error("the import token has no retrievals left")]
    RetrievalsExhausted,
    #[error("the encrypted key material could not be decrypted with the import token")]
    Unwrap,
    #[error("imported key material must be 16, 24 or 32 bytes, not {0}")]
    KeySize(usize),
    #[error(
        "the provided encrypted nonce was not encrypted with the key material given or the IV does not match"
    )]
    NonceDecrypt,
    #[error("the encrypted nonce given does not match the import token's nonce")]
    WrongNonce,
    #[error("the instance has no import token: create one first")]
    NotFound,
    #[error("import tokens import root keys only (extractable must be false)")]
    RootKeyRequired,
    #[error("import token could not be generated")]
    Internal,
}

impl ImportError {
    /// The reason code of this refusal or failure.
    pub fn reason(&self) -> Reason {
        match self {
            ImportError::InvalidField { .. } | ImportError::Unwrap | ImportError::KeySize(_) => {
                Reason::InvalidField
            }
            ImportError::Expired | ImportError::RetrievalsExhausted => Reason::ImportTokenExpired,
            ImportError::NonceDecrypt => Reason::NonceIvMismatch,
            ImportError::WrongNonce => Reason::WrongNonce,
            ImportError::NotFound => Reason::NotFound,
            ImportError::RootKeyRequired => Reason::RootKeyRequired,
            ImportError::Internal => Reason::ImportTokenBroken,
        }
    }
}

/// `POST /import_token` parameters (`None` = Key Protect's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportTokenRequest {
    pub expiration_secs: Option<u32>,
    pub max_retrievals: Option<u32>,
}

/// `GET /import_token`: the metadata plus the public key and nonce.
/// `Debug` leaves the nonce out.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportTokenContents {
    #[serde(flatten)]
    pub metadata: ImportTokenMetadata,
    /// base64 of the PEM public key.
    pub payload: String,
    /// base64 of the nonce.
    pub nonce: String,
}

impl std::fmt::Debug for ImportTokenContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportTokenContents")
            .field("metadata", &self.metadata)
            .field("payload", &self.payload)
            .field("nonce", &"[redacted]")
            .finish()
    }
}

impl ImportTokenContents {
    /// The contents `GET /import_token` returns, from the stored public key
    /// (SPKI DER) and the nonce.
    pub fn new(
        metadata: ImportTokenMetadata,
        public_key_der: &[u8],
        nonce: &SecretBytes,
    ) -> Result<Self, ImportError> {
        let pem = PublicKey::from_public_key_der(public_key_der)
            .map_err(|_| ImportError::Internal)?
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| ImportError::Internal)?;
        Ok(ImportTokenContents {
            metadata,
            payload: b64().encode(pem.as_bytes()),
            nonce: b64().encode(nonce.expose()),
        })
    }
}

/// Everything needed to rebuild a token that was stored: its metadata (from
/// the log), its public key, and its private key and nonce (unwrapped by the
/// HSM backend).
pub struct TokenParts {
    pub id: String,
    pub creation_date: DateTime<Utc>,
    pub expiration_date: DateTime<Utc>,
    pub max_retrievals: u32,
    pub remaining_retrievals: u32,
    pub public_key_der: Vec<u8>,
    /// PKCS#8 DER of the RSA private key.
    pub private_key_pkcs8: SecretBytes,
    pub nonce: SecretBytes,
}

/// An instance's import token (Key Protect keeps one per instance).
pub struct ImportToken {
    id: String,
    creation_date: DateTime<Utc>,
    expiration_date: DateTime<Utc>,
    max_retrievals: u32,
    remaining_retrievals: u32,
    nonce: [u8; NONCE_LEN],
    public_key_pem: String,
    public_key_der: Vec<u8>,
    private_key: PrivateKey,
}

impl std::fmt::Debug for ImportToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportToken")
            .field("id", &self.id)
            .field("expiration_date", &self.expiration_date)
            .field("remaining_retrievals", &self.remaining_retrievals)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl Drop for ImportToken {
    fn drop(&mut self) {
        // The private key zeroizes itself.
        zeroize::Zeroize::zeroize(&mut self.nonce);
    }
}

/// The operating system RNG for `rsa`'s `rand_core`.
struct OsRng;

#[derive(Debug)]
struct RngFailure;

impl std::fmt::Display for RngFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("operating system RNG failed")
    }
}

impl std::error::Error for RngFailure {}

impl rsa::rand_core::TryRng for OsRng {
    type Error = RngFailure;

    fn try_next_u32(&mut self) -> Result<u32, RngFailure> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngFailure> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngFailure> {
        getrandom::getrandom(dst).map_err(|_| RngFailure)
    }
}

impl rsa::rand_core::TryCryptoRng for OsRng {}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn decode_field(field: &'static str, value: &str, max: usize) -> Result<Vec<u8>, ImportError> {
    if value.len() > max {
        return Err(ImportError::InvalidField {
            field,
            reason: "too long",
        });
    }
    b64().decode(value).map_err(|_| ImportError::InvalidField {
        field,
        reason: "must be base64",
    })
}

impl ImportToken {
    /// Creates a token with a fresh RSA-4096 key pair.
    pub fn create(request: &ImportTokenRequest, now: DateTime<Utc>) -> Result<Self, ImportError> {
        Self::create_with_key_bits(request, now, DEFAULT_KEY_BITS)
    }

    /// Like [`ImportToken::create`] with another modulus size (2048 in tests:
    /// RSA-4096 generation takes seconds). Sizes below 2048 are refused.
    pub fn create_with_key_bits(
        request: &ImportTokenRequest,
        now: DateTime<Utc>,
        key_bits: usize,
    ) -> Result<Self, ImportError> {
        let expiration = request.expiration_secs.unwrap_or(DEFAULT_EXPIRATION_SECS);
        if !(MIN_EXPIRATION_SECS..=MAX_EXPIRATION_SECS).contains(&expiration) {
            return Err(ImportError::InvalidField {
                field: "expiration",
                reason: "must be 300 to 86400 seconds",
            });
        }
        let max_retrievals = request.max_retrievals.unwrap_or(DEFAULT_RETRIEVALS);
        if !(1..=MAX_RETRIEVALS).contains(&max_retrievals) {
            return Err(ImportError::InvalidField {
                field: "maxAllowedRetrievals",
                reason: "must be 1 to 500",
            });
        }
        if !(2048..=8192).contains(&key_bits) {
            return Err(ImportError::InvalidField {
                field: "key_bits",
                reason: "must be 2048 to 8192",
            });
        }
        let private_key =
            PrivateKey::new(&mut OsRng, key_bits).map_err(|_| ImportError::Internal)?;
        let public_key: PublicKey = private_key.to_public_key();
        let public_key_pem = public_key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| ImportError::Internal)?;
        let public_key_der = public_key
            .to_public_key_der()
            .map_err(|_| ImportError::Internal)?
            .into_vec();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|_| ImportError::Internal)?;
        Ok(ImportToken {
            id: uuid::Uuid::new_v4().to_string(),
            creation_date: now,
            expiration_date: now + Duration::seconds(i64::from(expiration)),
            max_retrievals,
            remaining_retrievals: max_retrievals,
            nonce,
            public_key_pem,
            public_key_der,
            private_key,
        })
    }

    /// Rebuilds a stored token. The private key must belong to the public
    /// key, and the nonce must be [`NONCE_LEN`] bytes.
    pub fn from_parts(parts: TokenParts) -> Result<Self, ImportError> {
        let private_key = PrivateKey::from_pkcs8_der(parts.private_key_pkcs8.expose())
            .map_err(|_| ImportError::Internal)?;
        let public_key_der = private_key
            .to_public_key()
            .to_public_key_der()
            .map_err(|_| ImportError::Internal)?
            .into_vec();
        if public_key_der != parts.public_key_der {
            return Err(ImportError::Internal);
        }
        let public_key_pem = private_key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| ImportError::Internal)?;
        let nonce: [u8; NONCE_LEN] = parts
            .nonce
            .expose()
            .try_into()
            .map_err(|_| ImportError::Internal)?;
        Ok(ImportToken {
            id: parts.id,
            creation_date: parts.creation_date,
            expiration_date: parts.expiration_date,
            max_retrievals: parts.max_retrievals,
            remaining_retrievals: parts.remaining_retrievals,
            nonce,
            public_key_pem,
            public_key_der,
            private_key,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// The RSA private key as PKCS#8 DER, for the HSM backend to wrap.
    pub fn private_key_pkcs8(&self) -> Result<SecretBytes, ImportError> {
        let document = self
            .private_key
            .to_pkcs8_der()
            .map_err(|_| ImportError::Internal)?;
        Ok(SecretBytes::from_slice(document.as_bytes()))
    }

    /// The nonce, for the HSM backend to wrap.
    pub fn nonce_secret(&self) -> SecretBytes {
        SecretBytes::from_slice(&self.nonce)
    }

    pub fn expiration_date(&self) -> DateTime<Utc> {
        self.expiration_date
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expiration_date
    }

    /// The PEM public key (what the base64 `payload` decodes to).
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// SHA-256 hex of the DER public key (for the `import_token.created` event).
    pub fn public_key_digest(&self) -> String {
        hex::encode(sha2::Sha256::digest(&self.public_key_der))
    }

    pub fn metadata(&self) -> ImportTokenMetadata {
        ImportTokenMetadata {
            id: self.id.clone(),
            creation_date: kp_time(self.creation_date),
            expiration_date: kp_time(self.expiration_date),
            max_allowed_retrievals: self.max_retrievals,
            remaining_retrievals: self.remaining_retrievals,
        }
    }

    /// `GET /import_token`: uses one retrieval and returns the public key
    /// and nonce; refused once expired or out of retrievals.
    pub fn retrieve(&mut self, now: DateTime<Utc>) -> Result<ImportTokenContents, ImportError> {
        if self.is_expired(now) {
            return Err(ImportError::Expired);
        }
        if self.remaining_retrievals == 0 {
            return Err(ImportError::RetrievalsExhausted);
        }
        self.remaining_retrievals -= 1;
        Ok(ImportTokenContents {
            metadata: self.metadata(),
            payload: b64().encode(self.public_key_pem.as_bytes()),
            nonce: b64().encode(self.nonce),
        })
    }

    /// Opens an import request (`payload`, `encryptedNonce`, `iv`, all
    /// base64): RSA-OAEP-SHA-256-decrypts the key material, checks its size,
    /// then checks that the encrypted nonce is this token's nonce under that
    /// key. Usable until the token expires (Key Protect lets one retrieved
    /// token import several keys).
    pub fn open(
        &self,
        encrypted_payload_b64: &str,
        encrypted_nonce_b64: &str,
        iv_b64: &str,
        now: DateTime<Utc>,
    ) -> Result<SecretBytes, ImportError> {
        if self.is_expired(now) {
            return Err(ImportError::Expired);
        }
        let encrypted_key = decode_field("payload", encrypted_payload_b64, 2048)?;
        let encrypted_nonce = decode_field("encryptedNonce", encrypted_nonce_b64, 256)?;
        let iv = decode_field("iv", iv_b64, 64)?;
        if iv.len() != IV_LEN {
            return Err(ImportError::InvalidField {
                field: "iv",
                reason: "must be 12 bytes",
            });
        }
        let material = SecretBytes::new(
            self.private_key
                .oaep_decrypt::<Sha256>(&encrypted_key)
                .map_err(|_| ImportError::Unwrap)?,
        );
        if !KEY_SIZES.contains(&material.len()) {
            return Err(ImportError::KeySize(material.len()));
        }
        let nonce = open_nonce(&material, &iv, &encrypted_nonce)?;
        if !secret::ct_eq(&nonce, &self.nonce) {
            return Err(ImportError::WrongNonce);
        }
        Ok(material)
    }
}

/// AES-GCM-decrypts the encrypted nonce under the imported key.
fn open_nonce(key: &SecretBytes, iv: &[u8], sealed: &[u8]) -> Result<Vec<u8>, ImportError> {
    let iv = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(iv)
        .map_err(|_| ImportError::NonceDecrypt)?;
    let opened = match key.len() {
        16 => Aes128Gcm::new_from_slice(key.expose())
            .map_err(|_| ImportError::NonceDecrypt)?
            .decrypt(&iv, sealed),
        24 => Aes192Gcm::new_from_slice(key.expose())
            .map_err(|_| ImportError::NonceDecrypt)?
            .decrypt(&iv, sealed),
        _ => Aes256Gcm::new_from_slice(key.expose())
            .map_err(|_| ImportError::NonceDecrypt)?
            .decrypt(&iv, sealed),
    };
    opened.map_err(|_| ImportError::NonceDecrypt)
}

pub use keyledger_core::keys::import_token::{ImportTokenMetadata, kp_time, projection};
pub mod sealing;

#[cfg(test)]
mod tests;
