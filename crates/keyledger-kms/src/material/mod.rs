//! The key-material store: each key version's material, wrapped under the
//! instance master key ([`WrappedMaterial`]), kept apart from the log so that
//! purging a key really deletes it (crypto-shredding) while the log keeps
//! only ids, versions and check values.
//!
//! It also keeps each instance's import tokens ([`StoredImportToken`]):
//! their RSA private keys and nonces are key material too, stored only
//! wrapped under the instance master key.
//!
//! One contract, one conformance suite (`conformance::material_store`, feature `conformance`)
//! run against every backend: [`embedded`] (files) here, PostgreSQL in
//! `keyledger-store-postgres`.

pub mod embedded;
mod token;

pub use token::{MAX_PUBLIC_KEY_LEN, StoredImportToken};

use crate::hsm::WrappedMaterial;

/// Longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("invalid instance name")]
    InvalidInstance,
    #[error("invalid key id: 1-64 characters of A-Z a-z 0-9 -")]
    InvalidKeyId,
    #[error("invalid key version: versions start at 1")]
    InvalidVersion,
    /// `put` of a version that already holds different material.
    #[error("key {key_id} version {version} already has material")]
    AlreadyExists { key_id: String, version: u32 },
    #[error("key {key_id} version {version} has no material")]
    NotFound { key_id: String, version: u32 },
    /// `replace` found another master-key generation than expected.
    #[error(
        "key {key_id} version {version} is under master key generation {found}, not {expected}"
    )]
    GenerationMismatch {
        key_id: String,
        version: u32,
        expected: u32,
        found: u32,
    },
    #[error("stored material of key {key_id} version {version} is corrupt")]
    Corrupt { key_id: String, version: u32 },
    #[error("invalid import token id: 1-64 characters of A-Z a-z 0-9 -")]
    InvalidTokenId,
    /// `put_import_token` of an id that already holds another token.
    #[error("import token {token_id} already exists with other contents")]
    TokenExists { token_id: String },
    #[error("import token {token_id} is not stored")]
    TokenNotFound { token_id: String },
    #[error("stored import token {token_id} is corrupt")]
    TokenCorrupt { token_id: String },
    /// `replace_import_token` found a secret under another generation.
    #[error("import token {token_id} is under master key generation {found}, not {expected}")]
    TokenGenerationMismatch {
        token_id: String,
        expected: u32,
        found: u32,
    },
    #[error("key material storage i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("key material storage backend error: {0}")]
    Backend(String),
    /// The store cannot be reached or cannot take writes right now (its
    /// database is down, restarting or failing over): nothing was done,
    /// and a retry may succeed.
    #[error("key material storage unavailable: {0}")]
    Unavailable(String),
}

/// Where wrapped key material lives. Implementations are shared between
/// request handlers and the crypto worker; every write is durable when it
/// returns `Ok`, and atomic (a crash leaves the old or the new blob, never
/// a torn one).
pub trait KeyMaterialStore: Send + Sync {
    /// True when reads never wait on a network or a database (files on a
    /// local disk), so an async server may read material on its event
    /// loop. A database-backed store answers false and key use goes to a
    /// blocking pool (a database client may not block an event loop).
    fn reads_are_local(&self) -> bool {
        true
    }

    /// Stores a new version's material. Idempotent for identical material;
    /// [`MaterialError::AlreadyExists`] if the version holds other material
    /// (versions are immutable except through [`KeyMaterialStore::replace`]).
    fn put(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
        wrapped: &WrappedMaterial,
    ) -> Result<(), MaterialError>;

    fn get(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
    ) -> Result<Option<WrappedMaterial>, MaterialError>;

    /// Version numbers holding material, ascending.
    fn versions(&self, instance: &str, key_id: &str) -> Result<Vec<u32>, MaterialError>;

    /// Ids of the keys holding material, sorted (master-key rotation walks them).
    fn keys(&self, instance: &str) -> Result<Vec<String>, MaterialError>;

    /// Master-key rotation: atomically swaps a version's blob for the same
    /// material wrapped under another generation, if it is still under
    /// `expected_generation` (compare-and-swap, so a restarted rotation
    /// cannot undo a newer one). Replacing with identical material is `Ok`.
    fn replace(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
        expected_generation: u32,
        wrapped: &WrappedMaterial,
    ) -> Result<(), MaterialError>;

    /// Shreds every version of a key; returns how many were deleted
    /// (0 if the key had none, so purging is idempotent).
    fn purge(&self, instance: &str, key_id: &str) -> Result<u32, MaterialError>;

    /// Shreds every key and import token of an instance (zeroize, instance
    /// deletion); returns the number of key versions deleted.
    fn purge_instance(&self, instance: &str) -> Result<u64, MaterialError>;

    // ---- import tokens (kept apart from keys: `keys` never lists them) ----

    /// Stores an import token under its id. Idempotent for identical
    /// contents; [`MaterialError::TokenExists`] if the id holds another.
    fn put_import_token(
        &self,
        instance: &str,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError>;

    fn get_import_token(
        &self,
        instance: &str,
        token_id: &str,
    ) -> Result<Option<StoredImportToken>, MaterialError>;

    /// Ids of the stored tokens, sorted. The service keeps one (the current
    /// token); more only between a crash and the next token creation.
    fn import_tokens(&self, instance: &str) -> Result<Vec<String>, MaterialError>;

    /// Master-key rotation: atomically swaps a token for the same token
    /// re-wrapped, if each secret is under `expected_generation` or already
    /// equal to the new one (compare-and-swap, like [`KeyMaterialStore::replace`]).
    /// Only the wrapped secrets may differ.
    fn replace_import_token(
        &self,
        instance: &str,
        expected_generation: u32,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError>;

    /// Shreds a token; `false` if it was not stored (idempotent).
    fn purge_import_token(&self, instance: &str, token_id: &str) -> Result<bool, MaterialError>;
}

/// Checks an import token id (the key-id rule: UUIDs).
pub fn check_token_id(token_id: &str) -> Result<(), MaterialError> {
    check_key_id(token_id).map_err(|_| MaterialError::InvalidTokenId)
}

/// Checks what can be checked of a token without the HSM: a valid id, a
/// public key of sane size, non-empty secrets.
pub fn check_token(token: &StoredImportToken) -> Result<(), MaterialError> {
    check_token_id(&token.token_id)?;
    let corrupt = || MaterialError::TokenCorrupt {
        token_id: token.token_id.clone(),
    };
    if token.public_key_der.is_empty() || token.public_key_der.len() > MAX_PUBLIC_KEY_LEN {
        return Err(corrupt());
    }
    if token.private_key.blob.is_empty() || token.nonce.blob.is_empty() {
        return Err(corrupt());
    }
    Ok(())
}

/// The compare-and-swap rule of [`KeyMaterialStore::replace_import_token`]
/// for a backend holding `current`: `Ok(true)` to write `new`, `Ok(false)`
/// if it is already stored, an error otherwise.
pub fn token_replace_allowed(
    current: &StoredImportToken,
    expected_generation: u32,
    new: &StoredImportToken,
) -> Result<bool, MaterialError> {
    if current == new {
        return Ok(false);
    }
    if current.token_id != new.token_id || current.public_key_der != new.public_key_der {
        return Err(MaterialError::TokenExists {
            token_id: new.token_id.clone(),
        });
    }
    for (old, replacement) in [
        (&current.private_key, &new.private_key),
        (&current.nonce, &new.nonce),
    ] {
        if old != replacement && old.mk_generation != expected_generation {
            return Err(MaterialError::TokenGenerationMismatch {
                token_id: new.token_id.clone(),
                expected: expected_generation,
                found: old.mk_generation,
            });
        }
    }
    Ok(true)
}

/// Checks an instance name (the event store's rule).
pub fn check_instance(instance: &str) -> Result<(), MaterialError> {
    keyledger_ledger::store::check_instance_name(instance)
        .map_err(|_| MaterialError::InvalidInstance)
}

/// Checks a key id: 1-64 of `A-Z a-z 0-9 -` (UUIDs), so it is safe as a
/// file name and a database key.
pub fn check_key_id(key_id: &str) -> Result<(), MaterialError> {
    let ok = !key_id.is_empty()
        && key_id.len() <= MAX_KEY_ID_LEN
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(MaterialError::InvalidKeyId)
    }
}

pub fn check_version(version: u32) -> Result<(), MaterialError> {
    if version == 0 {
        Err(MaterialError::InvalidVersion)
    } else {
        Ok(())
    }
}

/// Checks all three parts of an address.
pub fn check_address(instance: &str, key_id: &str, version: u32) -> Result<(), MaterialError> {
    check_instance(instance)?;
    check_key_id(key_id)?;
    check_version(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_safe_names() {
        for ok in ["a", "12345678-aaaa-bbbb-cccc-1234567890ab", &"x".repeat(64)] {
            assert!(check_key_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a b",
            "a\0b",
            "é",
            "a_b",
            &"x".repeat(65),
        ] {
            assert!(check_key_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_address("acme", "k", 0).is_err());
        assert!(check_address("../acme", "k", 1).is_err());
        assert!(check_address("acme", "k", 1).is_ok());
    }
}
