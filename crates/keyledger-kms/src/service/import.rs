//! Secure import with import tokens (Key Protect's `POST|GET /import_token`
//! and `POST /keys` with `encryptedNonce` and `iv`).
//!
//! - Create: a fresh RSA key pair and nonce; both secrets are wrapped under
//!   the instance master key by the HSM backend and stored in the
//!   key-material store, then `import_token.created` is appended. One token
//!   per instance: the new one replaces (and shreds) the old.
//! - Get: uses one retrieval (`import_token.retrieved`, before the answer)
//!   and returns the public key and the nonce. Dates and retrievals come
//!   from the log, so they survive restarts.
//! - Import: opens the client's RSA-OAEP payload with the token's private
//!   key and checks the AES-GCM-encrypted nonce; usable for any number of
//!   root keys until the token expires (Key Protect: "the retrieved import
//!   token can be reused to import one or more keys up until the date that
//!   the import token expires").
//!
//! Refusals change nothing and append nothing.

use sha2::{Digest, Sha256};

use super::{KeyError, KeyService};
use crate::hsm::HsmError;
use crate::import_token::projection::ImportTokenRecord;
use crate::import_token::sealing::{self, TokenSecret};
use crate::import_token::{
    ImportError, ImportToken, ImportTokenContents, ImportTokenMetadata, ImportTokenRequest,
    TokenParts, kp_time,
};
use crate::material::{MaterialError, StoredImportToken};
use crate::secret::SecretBytes;
use keyledger_core::decide::import_token::ImportTokenChange;
use keyledger_core::event::{Actor, ImportTokenCreated, ImportTokenRetrieved};
use keyledger_ledger::writer::Receipt;

/// A key's material as a Key Protect client sends it with an import token
/// (all base64): the RSA-OAEP-SHA-256 encrypted key, the AES-GCM encrypted
/// token nonce, and the 12-byte GCM IV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenImport {
    pub encrypted_payload: String,
    pub encrypted_nonce: String,
    pub iv: String,
}

impl KeyService {
    /// `POST /import_token`: creates the instance's import token, replacing
    /// any previous one. Returns its metadata.
    pub fn create_import_token(
        &self,
        actor: &Actor,
        correlation_id: &str,
        request: &ImportTokenRequest,
    ) -> Result<(ImportTokenMetadata, Receipt), KeyError> {
        self.current_generation()?;
        // RSA key generation takes a while: outside the command lock.
        let token = ImportToken::create_with_key_bits(request, self.now(), self.import_token_bits)?;
        let _guard = self.lock_commands();
        let generation = self.current_generation()?;
        let stored = sealing::seal(
            self.hsm.as_ref(),
            &self.instance,
            token.id(),
            token.public_key_der(),
            &token.private_key_pkcs8()?,
            &token.nonce_secret(),
            generation,
        )?;
        self.material.put_import_token(&self.instance, &stored)?;
        let event = ImportTokenCreated {
            token_id: token.id().to_string(),
            expiration_date: kp_time(token.expiration_date()),
            max_retrievals: token.metadata().max_allowed_retrievals,
            public_key_digest: token.public_key_digest(),
        };
        let change = ImportTokenChange::Create(event);
        let receipt = match self.decide_import_token(actor, correlation_id, change) {
            Ok(receipt) => receipt,
            Err(e) => {
                // No event, no token: shred it.
                let _ = self.material.purge_import_token(&self.instance, token.id());
                return Err(e);
            }
        };
        // The new token replaces every other (including leftovers of a crash
        // between storing a token and recording it). Best effort: a token the
        // log does not name as current is never used.
        for id in self.material.import_tokens(&self.instance)? {
            if id != token.id() {
                let _ = self.material.purge_import_token(&self.instance, &id);
            }
        }
        let metadata = self
            .current_import_token()
            .map(|t| t.metadata())
            .ok_or(ImportError::NotFound)?;
        Ok((metadata, receipt))
    }

    /// `GET /import_token`: uses one retrieval and returns the public key
    /// and the nonce; refused once the token expired or has no retrievals left.
    pub fn get_import_token(
        &self,
        actor: &Actor,
        correlation_id: &str,
    ) -> Result<(ImportTokenContents, Receipt), KeyError> {
        let _guard = self.lock_commands();
        let record = self.usable_import_token()?;
        if record.remaining_retrievals == 0 {
            return Err(ImportError::RetrievalsExhausted.into());
        }
        let stored = self.stored_import_token(&record)?;
        let nonce = self.open_token_secret(&stored, TokenSecret::Nonce)?;
        let mut metadata = record.metadata();
        metadata.remaining_retrievals = record.remaining_retrievals - 1;
        let contents = ImportTokenContents::new(metadata, &stored.public_key_der, &nonce)?;
        let event = ImportTokenRetrieved {
            token_id: record.id.clone(),
            remaining_retrievals: record.remaining_retrievals - 1,
        };
        let change = ImportTokenChange::Retrieve(event);
        let receipt = self.decide_import_token(actor, correlation_id, change)?;
        Ok((contents, receipt))
    }

    /// The current token's metadata (no retrieval used), if there is one.
    pub fn import_token_metadata(&self) -> Option<ImportTokenMetadata> {
        self.current_import_token().map(|t| t.metadata())
    }

    fn current_import_token(&self) -> Option<ImportTokenRecord> {
        self.read().import_token.current.clone()
    }

    /// The current token, unless there is none or it expired.
    fn usable_import_token(&self) -> Result<ImportTokenRecord, KeyError> {
        let record = self.current_import_token().ok_or(ImportError::NotFound)?;
        if record.is_expired(self.now()) {
            return Err(ImportError::Expired.into());
        }
        Ok(record)
    }

    /// The stored form of the current token. Its public key must be the one
    /// the (signed) log recorded: a public key swapped on disk would let
    /// someone else read imported keys, so it fails closed.
    fn stored_import_token(
        &self,
        record: &ImportTokenRecord,
    ) -> Result<StoredImportToken, KeyError> {
        let corrupt = || MaterialError::TokenCorrupt {
            token_id: record.id.clone(),
        };
        let stored = self
            .material
            .get_import_token(&self.instance, &record.id)?
            .ok_or_else(corrupt)?;
        if hex::encode(Sha256::digest(&stored.public_key_der)) != record.public_key_digest {
            return Err(corrupt().into());
        }
        Ok(stored)
    }

    /// Unwraps a secret of a stored token; one that does not open (damaged,
    /// or of another token or instance) is a corrupt token, not a bad request.
    fn open_token_secret(
        &self,
        stored: &StoredImportToken,
        secret: TokenSecret,
    ) -> Result<SecretBytes, KeyError> {
        sealing::open(self.hsm.as_ref(), &self.instance, stored, secret).map_err(|e| match e {
            HsmError::Decrypt => MaterialError::TokenCorrupt {
                token_id: stored.token_id.clone(),
            }
            .into(),
            other => other.into(),
        })
    }

    /// Opens a token import: the key material (16, 24 or 32 bytes) and the
    /// id of the token it came with. The caller holds the command lock.
    pub(super) fn open_token_import(
        &self,
        import: &TokenImport,
    ) -> Result<(SecretBytes, String), KeyError> {
        let record = self.usable_import_token()?;
        let stored = self.stored_import_token(&record)?;
        let open = |secret| self.open_token_secret(&stored, secret);
        let token = ImportToken::from_parts(TokenParts {
            id: record.id.clone(),
            creation_date: record.creation_date,
            expiration_date: record.expiration_date,
            max_retrievals: record.max_retrievals,
            remaining_retrievals: record.remaining_retrievals,
            public_key_der: stored.public_key_der.clone(),
            private_key_pkcs8: open(TokenSecret::PrivateKey)?,
            nonce: open(TokenSecret::Nonce)?,
        })?;
        let material = token.open(
            &import.encrypted_payload,
            &import.encrypted_nonce,
            &import.iv,
            self.now(),
        )?;
        Ok((material, record.id))
    }

    /// Master-key rotation: re-wraps the stored import tokens' secrets from
    /// generation `from` to `to`.
    pub(super) fn rewrap_import_tokens(&self, from: u32, to: u32) -> Result<(), KeyError> {
        for id in self.material.import_tokens(&self.instance)? {
            let Some(stored) = self.material.get_import_token(&self.instance, &id)? else {
                continue;
            };
            let rewrapped = sealing::rewrap(self.hsm.as_ref(), &self.instance, &stored, from, to)?;
            if rewrapped != stored {
                self.material
                    .replace_import_token(&self.instance, from, &rewrapped)?;
            }
        }
        Ok(())
    }
}
