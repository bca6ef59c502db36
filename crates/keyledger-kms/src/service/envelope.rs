//! Envelope encryption: wrap a data key (the caller's or a generated one),
//! unwrap (re-wrapping to the latest version when the key was rotated since),
//! rewrap, and a standard key's payload. The hot path: the shared side of
//! the command lock (uses run concurrently; a state change waits for the
//! uses in flight to be sequenced), one AEAD in the HSM backend, the key
//! aggregate's decision ([`keyledger_core::decide::key`], the one `verify
//! --policy` replays), one durable event before the answer.

use sha2::{Digest, Sha256};

use super::lifecycle::action_name;
use super::{Deferred, KeyError, KeyService};
use crate::ciphertext::{self, CiphertextHeader};
use crate::hsm::WrappedMaterial;
use crate::secret::SecretBytes;
use keyledger_core::decide::key::KeyChange;
use keyledger_core::event::{Actor, KeyPayloadRead, KeyRewrapped, KeyUnwrapped, KeyWrapped};
use keyledger_core::keys::projection::{KeyRecord, KeyVersion};
use keyledger_core::keys::state::{self, KeyAction};
use keyledger_ledger::writer::{Receipt, WriteError};

/// Largest data key accepted for wrapping (Key Protect: 7,168 bytes of base64).
pub const MAX_DEK_BYTES: usize = 5376;
/// Largest number of AAD entries, and characters per entry.
pub const MAX_AAD_ENTRIES: usize = 126;
pub const MAX_AAD_ENTRY_CHARS: usize = 255;

/// What a wrap returns.
#[derive(Debug)]
pub struct WrapResult {
    /// Base64 ciphertext (opaque to clients).
    pub ciphertext: String,
    pub key_version_id: String,
    /// The generated data key, when the caller gave none.
    pub generated: Option<SecretBytes>,
    pub receipt: Receipt,
}

/// What an unwrap returns.
#[derive(Debug)]
pub struct UnwrapResult {
    pub plaintext: SecretBytes,
    pub key_version_id: String,
    /// When the key was rotated since: the data key re-wrapped under the
    /// latest version, and that version's id.
    pub rewrapped: Option<(String, String)>,
    pub receipt: Receipt,
}

fn check_aad(aad: &[String]) -> Result<(), KeyError> {
    if aad.len() > MAX_AAD_ENTRIES || aad.iter().any(|a| a.chars().count() > MAX_AAD_ENTRY_CHARS) {
        return Err(KeyError::Invalid(format!(
            "aad: at most {MAX_AAD_ENTRIES} entries of at most {MAX_AAD_ENTRY_CHARS} characters"
        )));
    }
    Ok(())
}

fn digest_hex(text: &str) -> String {
    base16ct::lower::encode_string(&Sha256::digest(text.as_bytes()))
}

impl KeyService {
    /// Runs a key use again while it comes back [`WriteError::Stale`]
    /// (several servers on one database: another server's record changed
    /// the key between the decision and the event, and nothing was
    /// stored); each run decides on a state that includes that record.
    pub(super) fn again_if_stale<T>(
        &self,
        run: impl Fn() -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let mut attempt = 1;
        loop {
            match run() {
                Err(KeyError::Write(WriteError::Stale)) if attempt < super::MAX_DECISIONS => {
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The wrapped material of a key version (cached in memory; the cache is
    /// dropped on purge and master-key rotation).
    pub(super) fn wrapped(&self, key_id: &str, version: u32) -> Result<WrappedMaterial, KeyError> {
        let cache_key = (key_id.to_string(), version);
        if let Some(w) = self.cache_read().get(&cache_key) {
            return Ok(w.clone());
        }
        let wrapped = self
            .material
            .get(&self.instance, key_id, version)?
            .ok_or_else(|| KeyError::NotFound(format!("{key_id} version {version}")))?;
        self.cache_write().insert(cache_key, wrapped.clone());
        Ok(wrapped)
    }

    fn seal(
        &self,
        key: &KeyRecord,
        version: &KeyVersion,
        dek: &SecretBytes,
        aad: &[String],
    ) -> Result<String, KeyError> {
        let header = CiphertextHeader {
            instance: self.instance.clone(),
            key_id: key.id.clone(),
            key_version: version.version,
        };
        let header_bytes = header.encode()?;
        let wrapped = self.wrapped(&key.id, version.version)?;
        let binding = self.binding(&key.id, version.version, wrapped.mk_generation);
        let sealed = self.hsm.encrypt(
            &binding,
            &wrapped,
            dek,
            &ciphertext::aad(&header_bytes, aad),
        )?;
        Ok(ciphertext::encode_base64(&header, &sealed)?)
    }

    /// Opens a ciphertext of `key`; every failure is the one opaque error.
    fn open_ciphertext(
        &self,
        key: &KeyRecord,
        ciphertext_b64: &str,
        aad: &[String],
    ) -> Result<(SecretBytes, KeyVersion), KeyError> {
        let parsed = ciphertext::decode_base64(ciphertext_b64)?;
        if parsed.header.instance != self.instance || parsed.header.key_id != key.id {
            return Err(KeyError::Unprocessable);
        }
        let version = key
            .version(parsed.header.key_version)
            .cloned()
            .ok_or(KeyError::Unprocessable)?;
        let wrapped = match self.wrapped(&key.id, version.version) {
            Ok(w) => w,
            Err(KeyError::NotFound(_)) => return Err(KeyError::Unprocessable),
            Err(e) => return Err(e),
        };
        let binding = self.binding(&key.id, version.version, wrapped.mk_generation);
        let plaintext = self.hsm.decrypt(
            &binding,
            &wrapped,
            &parsed.sealed,
            &ciphertext::aad(&parsed.header_bytes, aad),
        )?;
        Ok((plaintext, version))
    }

    fn usable(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        action: KeyAction,
    ) -> Result<KeyRecord, KeyError> {
        self.usable_or_refusal(id, action)
            .map_err(|(key_id, e)| match key_id {
                Some(key_id) => self.refuse(actor, correlation_id, &key_id, action_name(action), e),
                None => e,
            })
    }

    /// [`Self::usable_or_refusal`]'s refusal as a deferred answer: recorded
    /// when it names a key id, at once otherwise.
    fn deferred_refusal<T>(
        &self,
        actor: &Actor,
        correlation_id: &str,
        action: KeyAction,
        (key_id, e): (Option<String>, KeyError),
    ) -> Deferred<T> {
        match key_id {
            Some(key_id) => self.refusal(actor, correlation_id, &key_id, action_name(action), e),
            None => Deferred::failed(e),
        }
    }

    /// The key if `action` may use it now; otherwise the refusal and the
    /// key id to record it under (the canonical id, or what the caller
    /// asked for), or `None` for a refusal that is bad input and recorded
    /// nowhere (a root-key action on a standard key, `KEY_ROOT_REQ_ERR`).
    /// The transition the key's dates owe it (expiry, activation) is
    /// appended first, against the service clock. Records no refusal.
    fn usable_or_refusal(
        &self,
        id: &str,
        action: KeyAction,
    ) -> Result<KeyRecord, (Option<String>, KeyError)> {
        match self.usable_now(id, action) {
            // Another server may have created or changed the key since this
            // one last heard from it: catch up before refusing.
            Err(_) if self.caught_up_moved() => self.usable_now(id, action),
            result => result,
        }
    }

    /// [`Self::usable_or_refusal`] on the projections as they are.
    fn usable_now(
        &self,
        id: &str,
        action: KeyAction,
    ) -> Result<KeyRecord, (Option<String>, KeyError)> {
        let key = self.key(id).map_err(|e| (Some(id.to_string()), e))?;
        state::check_key_type(key.extractable, action).map_err(|e| (None, e.into()))?;
        let key = self.dated(key).map_err(|e| (Some(id.to_string()), e))?;
        state::check(key.state, action).map_err(|e| (Some(key.id.clone()), e.into()))?;
        Ok(key)
    }

    /// Wraps `plaintext` (or a generated 32-byte data key) under the key's
    /// latest version, binding `aad`.
    pub fn wrap(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        plaintext: Option<SecretBytes>,
        aad: &[String],
    ) -> Result<WrapResult, KeyError> {
        self.again_if_stale(|| {
            self.start_wrap(actor, correlation_id, id, plaintext.clone(), aad)
                .wait()
        })
    }

    /// [`Self::wrap`] up to handing its event to the writer; the ciphertext
    /// is released once the event is durable.
    pub fn start_wrap(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        plaintext: Option<SecretBytes>,
        aad: &[String],
    ) -> Deferred<WrapResult> {
        self.try_start_wrap(actor, correlation_id, id, plaintext, aad)
            .unwrap_or_else(|refused| refused)
    }

    fn try_start_wrap(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        plaintext: Option<SecretBytes>,
        aad: &[String],
    ) -> Result<Deferred<WrapResult>, Deferred<WrapResult>> {
        check_aad(aad).map_err(Deferred::failed)?;
        if plaintext
            .as_ref()
            .is_some_and(|p| p.is_empty() || p.len() > MAX_DEK_BYTES)
        {
            return Err(Deferred::failed(KeyError::Invalid(format!(
                "plaintext must be 1-{MAX_DEK_BYTES} bytes"
            ))));
        }
        let key = self
            .usable_or_refusal(id, KeyAction::Wrap)
            .map_err(|r| self.deferred_refusal(actor, correlation_id, KeyAction::Wrap, r))?;
        // From here to the event: no state change in between (the key as
        // it is now, decided with the event it records).
        let _shared = self.share_commands();
        let key = self.key(&key.id).map_err(Deferred::failed)?;
        let version = key
            .current_version()
            .cloned()
            .ok_or_else(|| Deferred::failed(KeyError::NotFound(key.id.clone())))?;
        let (dek, generated) = match plaintext {
            Some(p) => (p, false),
            None => {
                let mut bytes = vec![0u8; 32];
                self.hsm
                    .random(&mut bytes)
                    .map_err(|e| Deferred::failed(e.into()))?;
                (SecretBytes::new(bytes), true)
            }
        };
        let ciphertext = self
            .seal(&key, &version, &dek, aad)
            .map_err(|e| self.refusal(actor, correlation_id, &key.id, "wrap", e))?;
        let event = KeyWrapped {
            key_id: key.id.clone(),
            version_id: version.id.clone(),
            generated_dek: generated,
            aad_entries: u32::try_from(aad.len()).unwrap_or(u32::MAX),
            ciphertext_digest: digest_hex(&ciphertext),
        };
        let receipt = self
            .submit_key_use(actor, correlation_id, KeyChange::Wrap(event))
            .map_err(Deferred::failed)?;
        Ok(Deferred::pending(receipt, move |receipt| WrapResult {
            ciphertext,
            key_version_id: version.id,
            generated: generated.then_some(dek),
            receipt,
        }))
    }

    /// Unwraps a ciphertext of the key. When the key was rotated since, the
    /// data key is also re-wrapped under the latest version (as Key Protect does).
    pub fn unwrap(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        ciphertext_b64: &str,
        aad: &[String],
    ) -> Result<UnwrapResult, KeyError> {
        self.again_if_stale(|| {
            self.start_unwrap(actor, correlation_id, id, ciphertext_b64, aad)
                .wait()
        })
    }

    /// [`Self::unwrap`] up to handing its event to the writer; the plaintext
    /// is released once the event is durable.
    pub fn start_unwrap(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        ciphertext_b64: &str,
        aad: &[String],
    ) -> Deferred<UnwrapResult> {
        self.try_start_unwrap(actor, correlation_id, id, ciphertext_b64, aad)
            .unwrap_or_else(|refused| refused)
    }

    fn try_start_unwrap(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        ciphertext_b64: &str,
        aad: &[String],
    ) -> Result<Deferred<UnwrapResult>, Deferred<UnwrapResult>> {
        check_aad(aad).map_err(Deferred::failed)?;
        let key = self
            .usable_or_refusal(id, KeyAction::Unwrap)
            .map_err(|r| self.deferred_refusal(actor, correlation_id, KeyAction::Unwrap, r))?;
        let _shared = self.share_commands();
        let key = self.key(&key.id).map_err(Deferred::failed)?;
        let (plaintext, version) = self
            .open_ciphertext(&key, ciphertext_b64, aad)
            .map_err(|e| self.refusal(actor, correlation_id, &key.id, "unwrap", e))?;
        let latest = key
            .current_version()
            .cloned()
            .ok_or_else(|| Deferred::failed(KeyError::NotFound(key.id.clone())))?;
        let rewrapped = if latest.version != version.version
            && state::check(key.state, KeyAction::Rewrap).is_ok()
        {
            let ciphertext = self
                .seal(&key, &latest, &plaintext, aad)
                .map_err(Deferred::failed)?;
            Some((ciphertext, latest.id.clone()))
        } else {
            None
        };
        let event = KeyUnwrapped {
            key_id: key.id.clone(),
            version_id: version.id.clone(),
            rewrapped_version_id: rewrapped.as_ref().map(|(_, v)| v.clone()),
            ciphertext_digest: digest_hex(ciphertext_b64),
        };
        let receipt = self
            .submit_key_use(actor, correlation_id, KeyChange::Unwrap(event))
            .map_err(Deferred::failed)?;
        Ok(Deferred::pending(receipt, move |receipt| UnwrapResult {
            plaintext,
            key_version_id: version.id,
            rewrapped,
            receipt,
        }))
    }

    /// Re-wraps a ciphertext under the key's latest version without returning
    /// the data key. Returns (ciphertext, old version id, new version id).
    pub fn rewrap(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        ciphertext_b64: &str,
        aad: &[String],
    ) -> Result<(String, String, String, Receipt), KeyError> {
        self.again_if_stale(|| self.rewrap_once(actor, correlation_id, id, ciphertext_b64, aad))
    }

    fn rewrap_once(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
        ciphertext_b64: &str,
        aad: &[String],
    ) -> Result<(String, String, String, Receipt), KeyError> {
        check_aad(aad)?;
        let key = self.usable(actor, correlation_id, id, KeyAction::Rewrap)?;
        let (pending, ciphertext, from, to) = {
            let _shared = self.share_commands();
            let key = self.key(&key.id)?;
            let (plaintext, version) = match self.open_ciphertext(&key, ciphertext_b64, aad) {
                Ok(opened) => opened,
                Err(e) => return Err(self.refuse(actor, correlation_id, &key.id, "rewrap", e)),
            };
            let latest = key
                .current_version()
                .cloned()
                .ok_or_else(|| KeyError::NotFound(key.id.clone()))?;
            let ciphertext = self.seal(&key, &latest, &plaintext, aad)?;
            let event = KeyRewrapped {
                key_id: key.id.clone(),
                from_version_id: version.id.clone(),
                to_version_id: latest.id.clone(),
                ciphertext_digest: digest_hex(&ciphertext),
            };
            let pending = self.submit_key_use(actor, correlation_id, KeyChange::Rewrap(event))?;
            (pending, ciphertext, version.id, latest.id)
        };
        Ok((ciphertext, from, to, pending.wait()?))
    }

    /// The payload of a standard key (root keys never leave the service).
    pub fn key_payload(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<(SecretBytes, Receipt), KeyError> {
        self.again_if_stale(|| self.key_payload_once(actor, correlation_id, id))
    }

    fn key_payload_once(
        &self,
        actor: &Actor,
        correlation_id: &str,
        id: &str,
    ) -> Result<(SecretBytes, Receipt), KeyError> {
        let key = self.usable(actor, correlation_id, id, KeyAction::GetPayload)?;
        if !key.extractable {
            return Err(self.refuse(
                actor,
                correlation_id,
                &key.id,
                "getPayload",
                KeyError::NotExtractable,
            ));
        }
        let (pending, payload) = {
            let _shared = self.share_commands();
            let key = self.key(&key.id)?;
            let version = key
                .current_version()
                .cloned()
                .ok_or_else(|| KeyError::NotFound(key.id.clone()))?;
            let wrapped = self.wrapped(&key.id, version.version)?;
            let payload = self.hsm.export_key(
                &self.binding(&key.id, version.version, wrapped.mk_generation),
                &wrapped,
            )?;
            let event = KeyPayloadRead {
                key_id: key.id,
                version_id: version.id,
            };
            let pending =
                self.submit_key_use(actor, correlation_id, KeyChange::ReadPayload(event))?;
            (pending, payload)
        };
        Ok((payload, pending.wait()?))
    }
}
