//! An import token's secrets under the instance master key. The RSA private
//! key (PKCS#8 DER) and the nonce are each wrapped by the HSM backend
//! (`import_key`, so with PKCS#11 the wrapping happens inside the token)
//! and bound, as AEAD associated data, to
//! `(instance, "import-token/<token id>/<secret>", version 1, master-key
//! generation)`. Key ids cannot contain `/`, so a token secret can never be
//! passed off as a key version's material, nor one token's secret as
//! another's, nor another instance's.
//!
//! Opening a token unwraps its private key into process memory for the RSA
//! decryption (neither HSM backend offers RSA-OAEP under a wrapped key);
//! it is zeroized when the token drops.

use crate::hsm::{HsmBackend, HsmError, KeyBinding, WrappedMaterial};
use crate::material::StoredImportToken;
use crate::secret::SecretBytes;

/// Which secret of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSecret {
    PrivateKey,
    Nonce,
}

impl TokenSecret {
    fn name(self) -> &'static str {
        match self {
            TokenSecret::PrivateKey => "private-key",
            TokenSecret::Nonce => "nonce",
        }
    }
}

/// The binding a token secret is wrapped under.
pub fn binding(
    instance: &str,
    token_id: &str,
    secret: TokenSecret,
    mk_generation: u32,
) -> KeyBinding {
    KeyBinding {
        instance: instance.to_string(),
        key_id: format!("import-token/{token_id}/{}", secret.name()),
        version: 1,
        mk_generation,
    }
}

/// The token's stored form: both secrets wrapped under the current master
/// key (`mk_generation`), the public key as given.
pub fn seal(
    hsm: &dyn HsmBackend,
    instance: &str,
    token_id: &str,
    public_key_der: &[u8],
    private_key_pkcs8: &SecretBytes,
    nonce: &SecretBytes,
    mk_generation: u32,
) -> Result<StoredImportToken, HsmError> {
    let wrap = |secret, material: &SecretBytes| {
        hsm.import_key(
            &binding(instance, token_id, secret, mk_generation),
            material,
        )
        .map(|new| new.wrapped)
    };
    Ok(StoredImportToken {
        token_id: token_id.to_string(),
        public_key_der: public_key_der.to_vec(),
        private_key: wrap(TokenSecret::PrivateKey, private_key_pkcs8)?,
        nonce: wrap(TokenSecret::Nonce, nonce)?,
    })
}

fn wrapped(stored: &StoredImportToken, secret: TokenSecret) -> &WrappedMaterial {
    match secret {
        TokenSecret::PrivateKey => &stored.private_key,
        TokenSecret::Nonce => &stored.nonce,
    }
}

/// Unwraps one secret of a stored token; a token of another instance or id,
/// or a damaged blob, is [`HsmError::Decrypt`].
pub fn open(
    hsm: &dyn HsmBackend,
    instance: &str,
    stored: &StoredImportToken,
    secret: TokenSecret,
) -> Result<SecretBytes, HsmError> {
    let wrapped = wrapped(stored, secret);
    hsm.export_key(
        &binding(instance, &stored.token_id, secret, wrapped.mk_generation),
        wrapped,
    )
}

/// Master-key rotation: the token with every secret under `from` re-wrapped
/// to `to` (both master keys loaded). Secrets already under `to` are kept.
pub fn rewrap(
    hsm: &dyn HsmBackend,
    instance: &str,
    stored: &StoredImportToken,
    from: u32,
    to: u32,
) -> Result<StoredImportToken, HsmError> {
    let mut out = stored.clone();
    for secret in [TokenSecret::PrivateKey, TokenSecret::Nonce] {
        let current = wrapped(stored, secret);
        if current.mk_generation != from {
            continue;
        }
        let b = binding(instance, &stored.token_id, secret, from);
        let rewrapped = hsm.rewrap_material(&b, current, to)?;
        match secret {
            TokenSecret::PrivateKey => out.private_key = rewrapped,
            TokenSecret::Nonce => out.nonce = rewrapped,
        }
    }
    Ok(out)
}
