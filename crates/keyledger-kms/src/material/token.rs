//! How an import token is kept in the key-material store: its id, its RSA
//! public key in the clear, and its two secrets (the RSA private key and the
//! nonce) each wrapped under the instance master key by the HSM backend
//! (`keys::import_token::sealing`). Nothing here is secret; the token's
//! dates and retrievals live in the log.

use crate::hsm::WrappedMaterial;

/// Largest public key accepted (SPKI DER of an RSA-8192 key is ~1 KiB).
pub const MAX_PUBLIC_KEY_LEN: usize = 4096;

/// An import token as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredImportToken {
    /// The token id (a UUID; the key-id rule applies).
    pub token_id: String,
    /// SubjectPublicKeyInfo DER of the token's RSA public key.
    pub public_key_der: Vec<u8>,
    /// PKCS#8 DER of the RSA private key, wrapped by the HSM backend.
    pub private_key: WrappedMaterial,
    /// The nonce, wrapped by the HSM backend.
    pub nonce: WrappedMaterial,
}

impl std::fmt::Debug for StoredImportToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredImportToken")
            .field("token_id", &self.token_id)
            .field("public_key_der_len", &self.public_key_der.len())
            .field("private_key", &self.private_key)
            .field("nonce", &self.nonce)
            .finish()
    }
}
