//! The wrapped-DEK format that wrap returns and unwrap/rewrap accept.
//! Clients treat it as opaque base64; `docs/KEYS.md` gives the byte layout:
//!
//! ```text
//! header = "KLW" | 0x01 | u16be len | instance | u16be len | key_id | u32be key_version
//! ciphertext = header | u32be len(sealed) | sealed          (sealed = nonce(12) || ct || tag(16))
//! aad = header || for each caller AAD entry: u32be len || entry bytes
//! ```
//!
//! The header names what unwrap needs to find the key material: the key
//! version's wrapped material is looked up by (instance, key id, version) and
//! carries its own master-key generation, so master-key rotation never
//! invalidates a ciphertext. The whole header is AEAD associated data, so a
//! ciphertext moved to another instance, key or version, any changed byte, or
//! other caller AAD fails decryption.

use base64::Engine;
use keyledger_core::reason::Reason;

/// Format magic.
pub const MAGIC: [u8; 3] = *b"KLW";
/// Format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Longest instance name (as [`keyledger_ledger::store::check_instance_name`]).
pub const MAX_INSTANCE_LEN: usize = 64;
/// Longest key id.
pub const MAX_KEY_ID_LEN: usize = 64;
/// AES-GCM nonce and tag sizes of the sealed body.
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Largest sealed body: nonce, tag and up to 8 KiB of data key.
pub const MAX_SEALED_LEN: usize = NONCE_LEN + TAG_LEN + 8192;

/// Why a ciphertext could not be decoded. Every variant has the one reason
/// [`Reason::UnprocessableCiphertext`]; the detail is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiphertextError {
    #[error("ciphertext is not valid base64")]
    Base64,
    #[error("ciphertext is truncated")]
    Truncated,
    #[error("ciphertext does not start with the keyledger magic")]
    BadMagic,
    #[error("unsupported ciphertext format version {0}")]
    UnsupportedVersion(u8),
    #[error("ciphertext field {0} has an invalid length")]
    BadLength(&'static str),
    #[error("ciphertext field {0} has invalid content")]
    BadField(&'static str),
    #[error("ciphertext has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl CiphertextError {
    /// The reason code of every variant: one opaque reason.
    pub fn reason(&self) -> Reason {
        Reason::UnprocessableCiphertext
    }
}

/// What a ciphertext is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CiphertextHeader {
    pub instance: String,
    pub key_id: String,
    /// Key version number (1 = first version).
    pub key_version: u32,
}

/// A decoded ciphertext: its header, the header's exact bytes (the AAD
/// prefix), and the HSM output `nonce || ct || tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphertext {
    pub header: CiphertextHeader,
    pub header_bytes: Vec<u8>,
    pub sealed: Vec<u8>,
}

fn id_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CiphertextHeader {
    /// The canonical header bytes (also the AAD prefix).
    pub fn encode(&self) -> Result<Vec<u8>, CiphertextError> {
        if !id_ok(&self.instance, MAX_INSTANCE_LEN) {
            return Err(CiphertextError::BadField("instance"));
        }
        if !id_ok(&self.key_id, MAX_KEY_ID_LEN) {
            return Err(CiphertextError::BadField("key_id"));
        }
        if self.key_version == 0 {
            return Err(CiphertextError::BadField("key_version"));
        }
        let mut out = Vec::with_capacity(12 + self.instance.len() + self.key_id.len());
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        for s in [&self.instance, &self.key_id] {
            // Lengths were bounded above, so they fit in u16.
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.key_version.to_be_bytes());
        Ok(out)
    }
}

/// Encodes a ciphertext from its header and the HSM's sealed output.
pub fn encode(header: &CiphertextHeader, sealed: &[u8]) -> Result<Vec<u8>, CiphertextError> {
    if sealed.len() < NONCE_LEN + TAG_LEN || sealed.len() > MAX_SEALED_LEN {
        return Err(CiphertextError::BadLength("sealed"));
    }
    let mut out = header.encode()?;
    out.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
    out.extend_from_slice(sealed);
    Ok(out)
}

/// Encodes and base64s (standard alphabet, padded), as the API returns it.
pub fn encode_base64(header: &CiphertextHeader, sealed: &[u8]) -> Result<String, CiphertextError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(encode(header, sealed)?))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CiphertextError> {
        let end = self.at.checked_add(n).ok_or(CiphertextError::Truncated)?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or(CiphertextError::Truncated)?;
        self.at = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, CiphertextError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CiphertextError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn id(&mut self, field: &'static str, max: usize) -> Result<String, CiphertextError> {
        let len = usize::from(self.u16()?);
        if len == 0 || len > max {
            return Err(CiphertextError::BadLength(field));
        }
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| CiphertextError::BadField(field))?;
        if !id_ok(s, max) {
            return Err(CiphertextError::BadField(field));
        }
        Ok(s.to_string())
    }
}

/// Decodes strictly: right magic and version, bounded lengths, valid ids,
/// version >= 1, a sealed body of plausible size, nothing after it.
pub fn decode(bytes: &[u8]) -> Result<Ciphertext, CiphertextError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(3)? != MAGIC {
        return Err(CiphertextError::BadMagic);
    }
    let version = r.take(1)?[0];
    if version != FORMAT_VERSION {
        return Err(CiphertextError::UnsupportedVersion(version));
    }
    let instance = r.id("instance", MAX_INSTANCE_LEN)?;
    let key_id = r.id("key_id", MAX_KEY_ID_LEN)?;
    let key_version = r.u32()?;
    if key_version == 0 {
        return Err(CiphertextError::BadField("key_version"));
    }
    let header_end = r.at;
    let sealed_len = r.u32()? as usize;
    if !(NONCE_LEN + TAG_LEN..=MAX_SEALED_LEN).contains(&sealed_len) {
        return Err(CiphertextError::BadLength("sealed"));
    }
    let sealed = r.take(sealed_len)?.to_vec();
    if r.at != bytes.len() {
        return Err(CiphertextError::TrailingBytes(bytes.len() - r.at));
    }
    Ok(Ciphertext {
        header: CiphertextHeader {
            instance,
            key_id,
            key_version,
        },
        header_bytes: bytes[..header_end].to_vec(),
        sealed,
    })
}

/// Decodes the base64 the API receives (standard alphabet, canonical padding).
pub fn decode_base64(text: &str) -> Result<Ciphertext, CiphertextError> {
    // Bound the work before decoding: a valid ciphertext is small.
    let max_b64 = (12 + MAX_INSTANCE_LEN + MAX_KEY_ID_LEN + 4 + 4 + MAX_SEALED_LEN).div_ceil(3) * 4;
    if text.len() > max_b64 {
        return Err(CiphertextError::BadLength("ciphertext"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| CiphertextError::Base64)?;
    decode(&bytes)
}

/// The AEAD associated data: the header bytes, then each caller AAD entry
/// as `u32be len || bytes` (so entry boundaries are unambiguous).
pub fn aad(header_bytes: &[u8], caller_aad: &[String]) -> Vec<u8> {
    let extra: usize = caller_aad.iter().map(|a| 4 + a.len()).sum();
    let mut out = Vec::with_capacity(header_bytes.len() + extra);
    out.extend_from_slice(header_bytes);
    for entry in caller_aad {
        out.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        out.extend_from_slice(entry.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> CiphertextHeader {
        CiphertextHeader {
            instance: "acme".into(),
            key_id: "12345678-aaaa-bbbb-cccc-1234567890ab".into(),
            key_version: 3,
        }
    }

    #[test]
    fn round_trip_and_exact_layout() {
        let sealed = vec![7u8; 40];
        let bytes = encode(&header(), &sealed).expect("encode");
        assert_eq!(&bytes[..4], b"KLW\x01");
        assert_eq!(&bytes[4..6], &[0, 4]);
        assert_eq!(&bytes[6..10], b"acme");
        let ct = decode(&bytes).expect("decode");
        assert_eq!(ct.header, header());
        assert_eq!(ct.sealed, sealed);
        assert_eq!(ct.header_bytes, header().encode().expect("header"));
        let b64 = encode_base64(&header(), &sealed).expect("b64");
        assert_eq!(decode_base64(&b64).expect("decode b64"), ct);
    }

    #[test]
    fn refuses_bad_headers_on_encode() {
        let mut h = header();
        h.key_id = "../etc".into();
        assert_eq!(
            encode(&h, &[0; 28]),
            Err(CiphertextError::BadField("key_id"))
        );
        let mut h = header();
        h.key_version = 0;
        assert!(encode(&h, &[0; 28]).is_err());
        assert_eq!(
            encode(&header(), &[0; 27]),
            Err(CiphertextError::BadLength("sealed"))
        );
    }

    #[test]
    fn aad_separates_entries() {
        let h = b"hdr";
        assert_ne!(aad(h, &["ab".into()]), aad(h, &["a".into(), "b".into()]));
        assert_ne!(aad(h, &["a".into()]), aad(h, &["a".into(), String::new()]));
        assert_eq!(aad(h, &[]), h.to_vec());
    }

    #[test]
    fn decode_base64_refuses_garbage_and_huge_input() {
        assert_eq!(decode_base64("not base64!"), Err(CiphertextError::Base64));
        assert!(decode_base64(&"A".repeat(1 << 20)).is_err());
        // KP's own ciphertexts (base64 JSON) are not ours.
        assert_eq!(
            decode_base64("eyJjaXBoZXJ0ZXh0IjoiIn0="),
            Err(CiphertextError::BadMagic)
        );
    }
}
