//! Material of new key versions (creation, rotation, policy rotation): what
//! a caller supplies is checked by the one payload rule
//! ([`keyledger_core::keys::payload::check`]), and every new version, imported or
//! generated, proves it works for what its key is for before any event can
//! name it, so a version that cannot be used never becomes current:
//!
//! - a root key's material seals a random probe with AES-256-GCM and opens
//!   it again in the HSM backend (the very calls wrap and unwrap make);
//! - a standard key's material is exported back and must be the payload
//!   given (or, generated, of a valid size).
//!
//! Imported material that fails is the caller's: 400 `INVALID_FIELD_ERR`
//! ([`PayloadError::Unusable`]). Generated material that fails is the
//! backend's fault: 500 with nothing internal in the answer.

use super::{KeyError, KeyService};
use crate::hsm::{HsmError, KeyBinding, NewMaterial};
use crate::secret::{self, SecretBytes};
use keyledger_core::keys::payload::{self, PayloadError};

/// Associated data of the self-test, so its ciphertext can never pass for
/// a wrapped data key (those bind a `KLW` header).
const PROBE_AAD: &[u8] = b"keyledger/v1/new-key-version-self-test";

impl KeyService {
    /// Wraps caller-supplied material for `binding`, once it passed
    /// [`payload::check`] and the self-test.
    pub(super) fn import_material(
        &self,
        binding: &KeyBinding,
        material: &SecretBytes,
        extractable: bool,
    ) -> Result<NewMaterial, KeyError> {
        payload::check(extractable, material.len())?;
        let new = self.hsm.import_key(binding, material)?;
        self.prove_usable(binding, &new, extractable, Some(material))?;
        Ok(new)
    }

    /// Generates AES-256 material for `binding` and self-tests it.
    pub(super) fn generate_material(
        &self,
        binding: &KeyBinding,
        extractable: bool,
    ) -> Result<NewMaterial, KeyError> {
        let new = self.hsm.generate_key(binding, payload::ROOT_KEY_SIZE)?;
        self.prove_usable(binding, &new, extractable, None)?;
        Ok(new)
    }

    /// The self-test of a new version (see the module documentation).
    fn prove_usable(
        &self,
        binding: &KeyBinding,
        new: &NewMaterial,
        extractable: bool,
        given: Option<&SecretBytes>,
    ) -> Result<(), KeyError> {
        let outcome = if extractable {
            self.hsm
                .export_key(binding, &new.wrapped)
                .map(|exported| match given {
                    Some(given) => secret::ct_eq(exported.expose(), given.expose()),
                    None => payload::check(true, exported.len()).is_ok(),
                })
        } else {
            self.seal_and_open_probe(binding, new)
        };
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) | Err(HsmError::Invalid(_) | HsmError::Decrypt) if given.is_some() => {
                Err(PayloadError::Unusable.into())
            }
            Ok(false) | Err(HsmError::Invalid(_) | HsmError::Decrypt) => Err(KeyError::Hsm(
                HsmError::Backend("new key material failed its self-test".into()),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Seals a random 32-byte probe under the new root-key material and
    /// opens it: true when it comes back unchanged.
    fn seal_and_open_probe(
        &self,
        binding: &KeyBinding,
        new: &NewMaterial,
    ) -> Result<bool, HsmError> {
        let mut probe = vec![0u8; 32];
        self.hsm.random(&mut probe)?;
        let probe = SecretBytes::new(probe);
        let sealed = self.hsm.encrypt(binding, &new.wrapped, &probe, PROBE_AAD)?;
        let opened = self
            .hsm
            .decrypt(binding, &new.wrapped, &sealed, PROBE_AAD)?;
        Ok(secret::ct_eq(opened.expose(), probe.expose()))
    }
}
