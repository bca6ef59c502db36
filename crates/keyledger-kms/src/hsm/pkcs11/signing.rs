//! Ed25519 signing keys (instance ledger keys) as token key pairs.
//!
//! `C_GenerateKeyPair` with `CKM_EC_EDWARDS_KEY_PAIR_GEN` on the curve
//! `CKA_EC_PARAMS` = DER OID 1.3.101.112 (id-Ed25519, RFC 8410). Both halves
//! are token objects, so the key survives a restart of the process; the
//! private key is `CKA_PRIVATE`, `CKA_SENSITIVE`, non-extractable and may only
//! sign. Signing is `C_Sign` with `CKM_EDDSA` and no parameters (pure Ed25519).
//!
//! Objects are found by `CKA_ID` = [`object_id`], an unambiguous length-
//! prefixed encoding of (instance, label); `CKA_LABEL`
//! (`keyledger/<instance>/sig/<label>`) is for people reading the token.
//! Lookups and writes hold the process-wide token-object lock (SoftHSM2 issue
//! #573, see `master_key`); `C_Sign` does not, and finds the private key by a
//! cached handle (object handles are valid in every session of the process).

use std::collections::HashMap;
use std::sync::Mutex;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::master_key::token_objects;
use super::p11_err;
use super::pool::lock;
use crate::hsm::HsmError;

/// DER of the object identifier 1.3.101.112 (id-Ed25519, RFC 8410).
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const ID_PREFIX: &[u8] = b"keyledger-sig/v1\0";

/// `CKA_ID` of the key pair: `"keyledger-sig/v1" || 0x00 || u16be(len(instance))
/// || instance || u16be(len(label)) || label` (names checked by the caller:
/// 1 to 65535 bytes).
pub fn object_id(instance: &str, label: &str) -> Vec<u8> {
    let mut id = Vec::with_capacity(ID_PREFIX.len() + 4 + instance.len() + label.len());
    id.extend_from_slice(ID_PREFIX);
    for name in [instance, label] {
        let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        id.extend_from_slice(&len.to_be_bytes());
        id.extend_from_slice(&name.as_bytes()[..usize::from(len)]);
    }
    id
}

fn object_label(instance: &str, label: &str) -> Vec<u8> {
    format!("keyledger/{instance}/sig/{label}").into_bytes()
}

fn not_found(instance: &str, label: &str) -> HsmError {
    HsmError::NoSigningKey {
        instance: instance.to_string(),
        label: label.to_string(),
    }
}

fn template(class: ObjectClass, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(class),
        Attribute::KeyType(KeyType::EC_EDWARDS),
        Attribute::Token(true),
        Attribute::Id(id.to_vec()),
    ]
}

/// The token objects of class `class` with this id (the caller holds the
/// token-object lock).
fn find_locked(
    session: &Session,
    class: ObjectClass,
    id: &[u8],
) -> Result<Vec<ObjectHandle>, HsmError> {
    session
        .find_objects(&template(class, id))
        .map_err(|e| p11_err(&e))
}

/// Cached handles of private signing keys, by (instance, label).
#[derive(Default)]
pub(super) struct SigningKeys {
    handles: Mutex<HashMap<(String, String), ObjectHandle>>,
}

impl SigningKeys {
    /// Generates the key pair; refuses a label the instance already uses.
    pub(super) fn generate(
        &self,
        session: &Session,
        instance: &str,
        label: &str,
    ) -> Result<[u8; 32], HsmError> {
        let id = object_id(instance, label);
        let name = object_label(instance, label);
        let public = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::EcParams(ED25519_OID.to_vec()),
            Attribute::Label(name.clone()),
            Attribute::Id(id.clone()),
        ];
        let private = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(name),
            Attribute::Id(id.clone()),
        ];
        let (public_handle, private_handle) = {
            let _token = token_objects();
            let exists = !find_locked(session, ObjectClass::PRIVATE_KEY, &id)?.is_empty()
                || !find_locked(session, ObjectClass::PUBLIC_KEY, &id)?.is_empty();
            if exists {
                return Err(HsmError::SigningKeyExists {
                    instance: instance.to_string(),
                    label: label.to_string(),
                });
            }
            session
                .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
                .map_err(|e| p11_err(&e))?
        };
        let key = read_public(session, public_handle);
        if key.is_err() {
            // A pair whose public key cannot be read is useless: remove it.
            let _token = token_objects();
            let _ = session.destroy_object(private_handle);
            let _ = session.destroy_object(public_handle);
        }
        let key = key?;
        lock(&self.handles).insert((instance.to_string(), label.to_string()), private_handle);
        Ok(key)
    }

    /// The public key of the pair.
    pub(super) fn public_key(
        &self,
        session: &Session,
        instance: &str,
        label: &str,
    ) -> Result<[u8; 32], HsmError> {
        let id = object_id(instance, label);
        let handle = {
            let _token = token_objects();
            find_locked(session, ObjectClass::PUBLIC_KEY, &id)?
                .first()
                .copied()
        };
        match handle {
            Some(h) => read_public(session, h),
            None => Err(not_found(instance, label)),
        }
    }

    /// The private key's handle: cached, or found on the token (and cached).
    pub(super) fn private_handle(
        &self,
        session: &Session,
        instance: &str,
        label: &str,
    ) -> Result<ObjectHandle, HsmError> {
        let key = (instance.to_string(), label.to_string());
        if let Some(h) = lock(&self.handles).get(&key) {
            return Ok(*h);
        }
        let found = {
            let _token = token_objects();
            find_locked(
                session,
                ObjectClass::PRIVATE_KEY,
                &object_id(instance, label),
            )?
            .first()
            .copied()
        };
        let handle = found.ok_or_else(|| not_found(instance, label))?;
        lock(&self.handles).insert(key, handle);
        Ok(handle)
    }

    /// Signs with `CKM_EDDSA` (pure Ed25519). A cached handle the token no
    /// longer knows (the key was destroyed through another handle or process)
    /// is dropped and the key looked up again once.
    pub(super) fn sign(
        &self,
        session: &Session,
        instance: &str,
        label: &str,
        message: &[u8],
    ) -> Result<[u8; 64], HsmError> {
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let handle = self.private_handle(session, instance, label)?;
        let signature = match session.sign(&mechanism, handle, message) {
            Err(Error::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _)) => {
                self.forget(instance, label);
                let handle = self.private_handle(session, instance, label)?;
                session.sign(&mechanism, handle, message)
            }
            other => other,
        }
        .map_err(|e| p11_err(&e))?;
        <[u8; 64]>::try_from(signature.as_slice()).map_err(|_| {
            HsmError::Backend(format!(
                "PKCS#11 C_Sign (CKM_EDDSA) returned {} bytes, not 64",
                signature.len()
            ))
        })
    }

    /// Destroys both halves of the pair.
    pub(super) fn destroy(
        &self,
        session: &Session,
        instance: &str,
        label: &str,
    ) -> Result<(), HsmError> {
        let id = object_id(instance, label);
        self.forget(instance, label);
        let _token = token_objects();
        let mut handles = find_locked(session, ObjectClass::PRIVATE_KEY, &id)?;
        handles.extend(find_locked(session, ObjectClass::PUBLIC_KEY, &id)?);
        if handles.is_empty() {
            return Err(not_found(instance, label));
        }
        for h in handles {
            match session.destroy_object(h) {
                Ok(()) | Err(Error::Pkcs11(RvError::ObjectHandleInvalid, _)) => {}
                Err(e) => return Err(p11_err(&e)),
            }
        }
        Ok(())
    }

    fn forget(&self, instance: &str, label: &str) {
        lock(&self.handles).remove(&(instance.to_string(), label.to_string()));
    }
}

/// The 32-byte public key from `CKA_EC_POINT`, which tokens give either raw
/// or (PKCS#11 3.0 and SoftHSM2) as a DER OCTET STRING `04 20 || key`.
fn read_public(session: &Session, handle: ObjectHandle) -> Result<[u8; 32], HsmError> {
    let attrs = {
        let _token = token_objects();
        session
            .get_attributes(handle, &[AttributeType::EcPoint])
            .map_err(|e| p11_err(&e))?
    };
    let point = attrs.into_iter().find_map(|a| match a {
        Attribute::EcPoint(p) => Some(p),
        _ => None,
    });
    let bytes = match point.as_deref() {
        Some([0x04, 0x20, rest @ ..]) if rest.len() == 32 => rest,
        Some(raw) if raw.len() == 32 => raw,
        _ => {
            return Err(HsmError::Backend(
                "PKCS#11 token returned no 32-byte Ed25519 CKA_EC_POINT".into(),
            ));
        }
    };
    <[u8; 32]>::try_from(bytes).map_err(|_| HsmError::Backend("Ed25519 public key length".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_unambiguous() {
        assert_eq!(
            object_id("acme", "k1"),
            b"keyledger-sig/v1\0\x00\x04acme\x00\x02k1".to_vec()
        );
        // A separator inside a name cannot make two pairs collide.
        assert_ne!(object_id("a/sig/b", "c"), object_id("a", "b/sig/c"));
        assert_ne!(object_id("ab", "c"), object_id("a", "bc"));
    }
}
