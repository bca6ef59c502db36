//! Master-key token objects: naming, state, lookup.
//!
//! Each master key is an AES-256 token object (`CKA_TOKEN`, `CKA_PRIVATE`,
//! `CKA_SENSITIVE`, non-extractable, `CKA_DERIVE` only) labelled
//! `keyledger/<instance>/mk/<generation>`. Its `CKA_ID` records its register
//! and verification pattern, `keyledger-mk/v1;state=<new|cur|old>;parts=<n>;
//! vp=<pattern>` (fixed length per key), updated by one `C_SetAttributeValue`
//! on activation.
//!
//! SoftHSM2 2.6 corrupts token objects written by concurrent threads
//! (SoftHSMv2 issue #573: `C_CreateObject` fails with `CKR_GENERAL_ERROR`,
//! attributes read back inconsistent), so every read and write of master-key
//! token objects here holds one process-wide lock. They are rare: ceremony
//! steps, status, and the master-key lookup of a key-cache miss.

use cryptoki::error::{Error, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use std::sync::{Mutex, MutexGuard};

use super::objects::zeroize_values;
use super::p11_err;
use super::pool::lock;
use crate::hsm::HsmError;
use crate::secret::SecretBytes;

const ID_PREFIX: &str = "keyledger-mk/v1;";

/// Serialises this process's access to token objects (see above); signing
/// key pairs (`signing`) take it too.
pub(super) fn token_objects() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    lock(&LOCK)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Register {
    /// Committed, not yet active.
    New,
    /// The active master key.
    Current,
    /// Replaced by a newer current key; kept for re-wrapping until retired.
    Previous,
}

impl Register {
    fn as_str(self) -> &'static str {
        match self {
            Register::New => "new",
            Register::Current => "cur",
            Register::Previous => "old",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct MasterKeyObject {
    pub(super) generation: u32,
    pub(super) register: Register,
    pub(super) parts: u8,
    pub(super) pattern: String,
    pub(super) handle: ObjectHandle,
}

pub(super) fn label(instance: &str, generation: u32) -> String {
    format!("keyledger/{instance}/mk/{generation}")
}

fn encode_id(register: Register, parts: u8, pattern: &str) -> Vec<u8> {
    format!(
        "{ID_PREFIX}state={};parts={parts};vp={pattern}",
        register.as_str()
    )
    .into_bytes()
}

fn decode_id(id: &[u8]) -> Option<(Register, u8, String)> {
    let s = std::str::from_utf8(id).ok()?.strip_prefix(ID_PREFIX)?;
    let mut register = None;
    let mut parts = None;
    let mut pattern = None;
    for field in s.split(';') {
        match field.split_once('=')? {
            ("state", "new") => register = Some(Register::New),
            ("state", "cur") => register = Some(Register::Current),
            ("state", "old") => register = Some(Register::Previous),
            ("parts", n) => parts = n.parse().ok(),
            ("vp", p) => pattern = Some(p.to_string()),
            _ => return None,
        }
    }
    Some((register?, parts?, pattern?))
}

/// Creates the master key as a token object from the combined parts.
pub(super) fn create(
    session: &Session,
    instance: &str,
    generation: u32,
    parts: u8,
    pattern: &str,
    key: &SecretBytes,
) -> Result<ObjectHandle, HsmError> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Derive(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Label(label(instance, generation).into_bytes()),
        Attribute::Id(encode_id(Register::New, parts, pattern)),
        Attribute::Value(key.expose().to_vec()),
    ];
    let created = {
        let _token = token_objects();
        session.create_object(&t)
    };
    zeroize_values(&mut t);
    created.map_err(|e| p11_err(&e))
}

pub(super) fn set_register(
    session: &Session,
    mk: &MasterKeyObject,
    register: Register,
) -> Result<(), HsmError> {
    let _token = token_objects();
    session
        .update_attributes(
            mk.handle,
            &[Attribute::Id(encode_id(register, mk.parts, &mk.pattern))],
        )
        .map_err(|e| p11_err(&e))
}

fn read(
    session: &Session,
    handle: ObjectHandle,
    instance: &str,
) -> Result<Option<MasterKeyObject>, HsmError> {
    let attrs = match session.get_attributes(handle, &[AttributeType::Label, AttributeType::Id]) {
        Ok(attrs) => attrs,
        // Destroyed by another thread (retire, zeroize) since C_FindObjects.
        Err(Error::Pkcs11(RvError::ObjectHandleInvalid, _)) => return Ok(None),
        Err(e) => return Err(p11_err(&e)),
    };
    let (mut lbl, mut id) = (None, None);
    for a in attrs {
        match a {
            Attribute::Label(l) => lbl = Some(l),
            Attribute::Id(i) => id = Some(i),
            _ => {}
        }
    }
    let (Some(lbl), Some(id)) = (lbl, id) else {
        return Ok(None);
    };
    let prefix = format!("keyledger/{instance}/mk/");
    let Some(generation) = std::str::from_utf8(&lbl)
        .ok()
        .and_then(|l| l.strip_prefix(&prefix))
        .and_then(|g| g.parse::<u32>().ok())
    else {
        return Ok(None);
    };
    let Some((register, parts, pattern)) = decode_id(&id) else {
        return Ok(None);
    };
    Ok(Some(MasterKeyObject {
        generation,
        register,
        parts,
        pattern,
        handle,
    }))
}

fn base_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
    ]
}

/// Every master key of `instance` on the token, by generation.
pub(super) fn list(session: &Session, instance: &str) -> Result<Vec<MasterKeyObject>, HsmError> {
    let _token = token_objects();
    let handles = session
        .find_objects(&base_template())
        .map_err(|e| p11_err(&e))?;
    let mut out = Vec::new();
    for h in handles {
        if let Some(mk) = read(session, h, instance)? {
            out.push(mk);
        }
    }
    out.sort_by_key(|mk| mk.generation);
    Ok(out)
}

/// The master key of `instance` and `generation`, if the token has it.
pub(super) fn find(
    session: &Session,
    instance: &str,
    generation: u32,
) -> Result<Option<MasterKeyObject>, HsmError> {
    let mut t = base_template();
    t.push(Attribute::Label(label(instance, generation).into_bytes()));
    let _token = token_objects();
    for h in session.find_objects(&t).map_err(|e| p11_err(&e))? {
        if let Some(mk) = read(session, h, instance)? {
            return Ok(Some(mk));
        }
    }
    Ok(None)
}

/// Destroys a master key object.
pub(super) fn destroy(session: &Session, mk: &MasterKeyObject) -> Result<(), HsmError> {
    let _token = token_objects();
    match session.destroy_object(mk.handle) {
        // Destroyed meanwhile (another `Pkcs11Hsm` of this process).
        Ok(()) | Err(Error::Pkcs11(RvError::ObjectHandleInvalid, _)) => Ok(()),
        Err(e) => Err(p11_err(&e)),
    }
}

/// The current master key: the highest generation marked current (an
/// activation interrupted between its two attribute updates leaves two).
pub(super) fn current(all: &[MasterKeyObject]) -> Option<&MasterKeyObject> {
    all.iter().rev().find(|mk| mk.register == Register::Current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_id_round_trips_and_rejects_junk() {
        for (r, parts) in [
            (Register::New, 3),
            (Register::Current, 2),
            (Register::Previous, 255),
        ] {
            let id = encode_id(r, parts, "00ff");
            assert_eq!(decode_id(&id), Some((r, parts, "00ff".to_string())));
        }
        for junk in [
            &b""[..],
            b"keyledger-mk/v1;",
            b"keyledger-mk/v2;state=new;parts=2;vp=ab",
            b"keyledger-mk/v1;state=current;parts=2;vp=ab",
            b"keyledger-mk/v1;state=new;parts=256;vp=ab",
            b"keyledger-mk/v1;state=new;vp=ab",
            b"keyledger-mk/v1;state=new;parts=2;vp=ab;x=1",
            b"\xff\xfe",
        ] {
            assert_eq!(decode_id(junk), None, "{junk:?}");
        }
        assert_eq!(label("acme", 7), "keyledger/acme/mk/7");
    }
}
