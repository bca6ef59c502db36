//! Key objects and the operations on them: attribute templates, the
//! binding-specific KEK derivation, key wrapping, KCV and AES-GCM.

use cryptoki::error::Error;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::ekdf::AesCbcDeriveParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::p11_err;
use crate::hsm::{HsmError, KeyBinding};
use crate::secret::SecretBytes;

pub(super) const IV_LEN: usize = 12;
pub(super) const TAG_LEN: usize = 16;
/// Domain separation of the KEK derivation input.
const KEK_CONTEXT: &[u8] = b"keyledger/v1/pkcs11-kek\0";
const BLOB_AES256: u8 = 0x01;
const BLOB_GENERIC: u8 = 0x02;

/// What a wrapped blob holds, from its header: `0x01` (an AES-256 key) or
/// `0x02 || u32be(length)` (a generic secret of that many bytes: an opaque
/// payload), followed by the `CKM_AES_KEY_WRAP_PAD` output. The header is
/// part of the KEK derivation input, so a changed header does not unwrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Aes256,
    Generic(u32),
}

impl Kind {
    /// The kind of `len` bytes of material (1..=8192, checked by the caller).
    pub(super) fn of_len(len: usize) -> Kind {
        match len {
            32 => Kind::Aes256,
            n => Kind::Generic(u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }

    pub(super) fn is_aes(self) -> bool {
        self == Kind::Aes256
    }

    fn header(self) -> Vec<u8> {
        match self {
            Kind::Aes256 => vec![BLOB_AES256],
            Kind::Generic(len) => {
                let mut h = vec![BLOB_GENERIC];
                h.extend_from_slice(&len.to_be_bytes());
                h
            }
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            Kind::Aes256 => KeyType::AES,
            Kind::Generic(_) => KeyType::GENERIC_SECRET,
        }
    }

    /// The kind and the wrapped key of a blob; not a blob: [`HsmError::Decrypt`].
    pub(super) fn parse(blob: &[u8]) -> Result<(Kind, &[u8]), HsmError> {
        match blob.split_first() {
            Some((&BLOB_AES256, rest)) => Ok((Kind::Aes256, rest)),
            Some((&BLOB_GENERIC, rest)) if rest.len() >= 4 => {
                let (len, rest) = rest.split_at(4);
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                Ok((Kind::Generic(len), rest))
            }
            _ => Err(HsmError::Decrypt),
        }
    }
}

/// A session object destroyed when this guard drops (temporary keys: KEKs,
/// freshly generated or imported material, export and rewrap objects).
pub(super) struct TempKey<'s> {
    session: &'s Session,
    pub(super) handle: ObjectHandle,
}

impl<'s> TempKey<'s> {
    pub(super) fn new(session: &'s Session, handle: ObjectHandle) -> Self {
        TempKey { session, handle }
    }

    /// Keeps the object alive (the key cache owns it from now on).
    pub(super) fn keep(self) -> ObjectHandle {
        let handle = self.handle;
        std::mem::forget(self);
        handle
    }
}

impl Drop for TempKey<'_> {
    fn drop(&mut self) {
        let _ = self.session.destroy_object(self.handle);
    }
}

/// What an unwrapped key object is for; decides its attributes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Use {
    /// Encrypt/decrypt data keys: sensitive, never extractable (cached).
    Operate,
    /// Re-wrapping under another master key: sensitive, wrappable once.
    Rewrap,
    /// Exporting a standard key: readable `CKA_VALUE`, destroyed at once.
    Export,
}

fn secret_key_base(key_type: KeyType) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Token(false),
        Attribute::Private(true),
    ]
}

/// Attributes of new key material (generated or imported): sensitive (its
/// value is never readable) but extractable, because `C_WrapKey` refuses
/// non-extractable keys and the wrapped blob is the only persistent form.
fn new_material_template(kind: Kind) -> Vec<Attribute> {
    let mut t = secret_key_base(kind.key_type());
    t.extend([
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Encrypt(kind.is_aes()),
    ]);
    t
}

/// Generates an AES-256 key inside the token (session object).
pub(super) fn generate_aes256(session: &Session) -> Result<ObjectHandle, HsmError> {
    let mut t = new_material_template(Kind::Aes256);
    t.push(Attribute::ValueLen(32u64.into()));
    session
        .generate_key(&Mechanism::AesKeyGen, &t)
        .map_err(|e| p11_err(&e))
}

/// Creates a session object holding caller-supplied material; the copy of
/// the bytes in the template is zeroized afterwards.
pub(super) fn import(session: &Session, material: &SecretBytes) -> Result<ObjectHandle, HsmError> {
    let mut t = new_material_template(Kind::of_len(material.len()));
    t.push(Attribute::Value(material.expose().to_vec()));
    let created = session.create_object(&t);
    zeroize_values(&mut t);
    created.map_err(|e| p11_err(&e))
}

/// Zeroizes every `CKA_VALUE` in a template once the call that needed it returned.
pub(super) fn zeroize_values(template: &mut [Attribute]) {
    for a in template.iter_mut() {
        if let Attribute::Value(v) = a {
            v.zeroize();
        }
    }
}

/// Derives the key-encryption key of `binding` (and key type) from the master
/// key, inside the token: `CKM_AES_CBC_ENCRYPT_DATA` with IV = 0 over
/// `SHA-256(KEK_CONTEXT || blob header || binding.aad())`, i.e. the 32 bytes
/// of AES-256-CBC(MK, 0, digest) are the KEK: a session object that can only
/// wrap/unwrap and is never extractable.
pub(super) fn derive_kek<'s>(
    session: &'s Session,
    master_key: ObjectHandle,
    binding: &KeyBinding,
    kind: Kind,
) -> Result<TempKey<'s>, HsmError> {
    let mut input = Sha256::new();
    input.update(KEK_CONTEXT);
    input.update(kind.header());
    input.update(binding.aad());
    let digest: [u8; 32] = input.finalize().into();
    let params = AesCbcDeriveParams::new([0u8; 16], &digest);
    let mut t = secret_key_base(KeyType::AES);
    t.extend([
        Attribute::ValueLen(32u64.into()),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
    ]);
    let kek = session
        .derive_key(&Mechanism::AesCbcEncryptData(params), master_key, &t)
        .map_err(|e| p11_err(&e))?;
    Ok(TempKey::new(session, kek))
}

/// `C_WrapKey` with `CKM_AES_KEY_WRAP_PAD` (RFC 5649) under `kek`.
pub(super) fn wrap(
    session: &Session,
    kek: ObjectHandle,
    key: ObjectHandle,
    kind: Kind,
) -> Result<Vec<u8>, HsmError> {
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, key)
        .map_err(|e| p11_err(&e))?;
    let mut blob = kind.header();
    blob.extend_from_slice(&wrapped);
    Ok(blob)
}

/// `C_UnwrapKey` of a blob made by [`wrap`] into a session object. Any
/// failure (wrong KEK = wrong binding or master key, tampered blob) is
/// [`HsmError::Decrypt`].
pub(super) fn unwrap(
    session: &Session,
    kek: ObjectHandle,
    blob: &[u8],
    usage: Use,
) -> Result<ObjectHandle, HsmError> {
    let (kind, wrapped) = Kind::parse(blob)?;
    // RFC 5649 output of 1..=8192 bytes of key: 16..=8200 bytes, a multiple of 8.
    if wrapped.len() < 16 || wrapped.len() > 8200 || wrapped.len() % 8 != 0 {
        return Err(HsmError::Decrypt);
    }
    let aes = kind.is_aes();
    let mut t = secret_key_base(kind.key_type());
    match usage {
        Use::Operate => t.extend([
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(aes),
            Attribute::Decrypt(aes),
        ]),
        Use::Rewrap => t.extend([Attribute::Sensitive(true), Attribute::Extractable(true)]),
        Use::Export => t.extend([Attribute::Sensitive(false), Attribute::Extractable(true)]),
    }
    session
        .unwrap_key(&Mechanism::AesKeyWrapPad, kek, wrapped, &t)
        .map_err(|_| HsmError::Decrypt)
}

/// Reads `CKA_VALUE` of an exportable object of `kind`. SoftHSM2 2.6
/// returns an unwrapped generic secret with its RFC 5649 zero padding, so the
/// value is cut to the length the (authenticated) blob header states.
pub(super) fn read_value(
    session: &Session,
    key: ObjectHandle,
    kind: Kind,
) -> Result<SecretBytes, HsmError> {
    let attrs = session
        .get_attributes(key, &[AttributeType::Value])
        .map_err(|e| p11_err(&e))?;
    let Some(Attribute::Value(mut value)) = attrs.into_iter().next() else {
        return Err(HsmError::Backend(
            "token did not return the key value".into(),
        ));
    };
    let len = match kind {
        Kind::Aes256 => 32,
        Kind::Generic(len) => usize::try_from(len).unwrap_or(usize::MAX),
    };
    if value.len() < len || value.len() - len >= 8 || value[len..].iter().any(|b| *b != 0) {
        value.zeroize();
        return Err(HsmError::Decrypt);
    }
    value.truncate(len);
    Ok(SecretBytes::new(value))
}

/// Key check value of an AES key object: AES-ECB of 16 zero bytes under
/// the key in the token, first 3 bytes, hex (= `ceremony::kcv` of its bytes).
pub(super) fn kcv(session: &Session, key: ObjectHandle) -> Result<String, HsmError> {
    let block = session
        .encrypt(&Mechanism::AesEcb, key, &[0u8; 16])
        .map_err(|e| p11_err(&e))?;
    Ok(hex::encode(block.get(..3).unwrap_or_default()))
}

/// AES-256-GCM, random 96-bit IV, 128-bit tag: `iv || ciphertext || tag`.
pub(super) fn gcm_encrypt(
    session: &Session,
    key: ObjectHandle,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, HsmError> {
    let mut iv = [0u8; IV_LEN];
    getrandom::getrandom(&mut iv)
        .map_err(|_| HsmError::Backend("operating system RNG failed".into()))?;
    let mut iv_param = iv;
    let params =
        GcmParams::new(&mut iv_param, aad, (TAG_LEN as u64 * 8).into()).map_err(|e| p11_err(&e))?;
    let ct = session
        .encrypt(&Mechanism::AesGcm(params), key, plaintext)
        .map_err(|e| p11_err(&e))?;
    let mut out = Vec::with_capacity(IV_LEN + ct.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Inverse of [`gcm_encrypt`]; every failure is [`HsmError::Decrypt`].
pub(super) fn gcm_decrypt(
    session: &Session,
    key: ObjectHandle,
    sealed: &[u8],
    aad: &[u8],
) -> Result<SecretBytes, HsmError> {
    if sealed.len() < IV_LEN + TAG_LEN {
        return Err(HsmError::Decrypt);
    }
    let (iv, ct) = sealed.split_at(IV_LEN);
    let mut iv = <[u8; IV_LEN]>::try_from(iv).map_err(|_| HsmError::Decrypt)?;
    let params =
        GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into()).map_err(|_| HsmError::Decrypt)?;
    session
        .decrypt(&Mechanism::AesGcm(params), key, ct)
        .map(SecretBytes::new)
        .map_err(|_: Error| HsmError::Decrypt)
}

/// Whether a key object's `CKA_SENSITIVE`/`CKA_EXTRACTABLE` (and their
/// history, `CKA_ALWAYS_SENSITIVE`/`CKA_NEVER_EXTRACTABLE`) are set and
/// whether the token hands out its `CKA_VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyObjectInfo {
    pub token_object: bool,
    pub sensitive: bool,
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`: sensitive since it was made (generated in the token).
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`: never extractable since it was made.
    pub never_extractable: bool,
    /// True if `C_GetAttributeValue(CKA_VALUE)` returned the key bytes.
    pub value_readable: bool,
}

pub(super) fn inspect(session: &Session, key: ObjectHandle) -> Result<KeyObjectInfo, HsmError> {
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
            ],
        )
        .map_err(|e| p11_err(&e))?;
    let mut info = KeyObjectInfo {
        token_object: false,
        sensitive: false,
        extractable: false,
        always_sensitive: false,
        never_extractable: false,
        value_readable: false,
    };
    for a in attrs {
        match a {
            Attribute::Token(v) => info.token_object = v,
            Attribute::Sensitive(v) => info.sensitive = v,
            Attribute::Extractable(v) => info.extractable = v,
            Attribute::AlwaysSensitive(v) => info.always_sensitive = v,
            Attribute::NeverExtractable(v) => info.never_extractable = v,
            _ => {}
        }
    }
    // The value itself: cryptoki drops attributes the token calls sensitive.
    let mut value = session
        .get_attributes(key, &[AttributeType::Value])
        .map_err(|e| p11_err(&e))?;
    info.value_readable = value.iter().any(|a| matches!(a, Attribute::Value(_)));
    zeroize_values(&mut value);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_header_round_trips() {
        for kind in [Kind::Aes256, Kind::Generic(1), Kind::Generic(8192)] {
            let mut blob = kind.header();
            blob.extend_from_slice(&[9u8; 16]);
            let (parsed, rest) = Kind::parse(&blob).expect("parse");
            assert_eq!(parsed, kind);
            assert_eq!(rest, &[9u8; 16]);
        }
        assert_eq!(Kind::of_len(32), Kind::Aes256);
        assert_eq!(Kind::of_len(31), Kind::Generic(31));
        for junk in [
            &b""[..],
            &[0x00, 1, 2][..],
            &[0x02, 0, 0][..],
            &[0x03; 20][..],
        ] {
            assert_eq!(Kind::parse(junk).err(), Some(HsmError::Decrypt), "{junk:?}");
        }
    }
}
