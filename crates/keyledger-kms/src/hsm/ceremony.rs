//! The master-key ceremony, as pure functions shared by both backends and by
//! the key-owner CLI: sealing a part to the backend's ceremony key (HPKE),
//! verification patterns, XOR combination of parts, and key check values.
//! `docs/HSM.md` ("Master-key ceremony") gives the byte-exact protocol.
//!
//! - Transport: HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256),
//!   HKDF-SHA256, AES-256-GCM, `info` = [`part_info`], empty AEAD `aad`;
//!   a [`SealedPart`] is `enc` (32 bytes) and the ciphertext (48 bytes).
//! - Verification patterns: hex of the first 16 bytes of
//!   `BLAKE3-derive-key(context, key)` with [`PART_VP_CONTEXT`] or
//!   [`MASTER_KEY_VP_CONTEXT`].
//! - Combination: XOR of at least two distinct 32-byte parts.
//! - KCV: first 3 bytes of AES-ECB(key, 0^16), hex (AES keys), see [`kcv`].

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use hpke::rand_core::{Infallible, TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::{Zeroize, Zeroizing};

use super::{HsmError, SealedPart};
use crate::secret::{SecretBytes, ct_eq};

/// Length of a master key and of each of its parts (AES-256).
pub const PART_LEN: usize = 32;
/// Length of the HPKE encapsulated key (X25519 public key).
pub const ENC_LEN: usize = 32;
/// Length of a sealed part's ciphertext: the part plus the AES-GCM tag.
pub const SEALED_CIPHERTEXT_LEN: usize = PART_LEN + 16;
/// Domain label at the start of the HPKE `info`.
pub const PART_INFO_LABEL: &[u8] = b"keyledger/v1/master-key-part";
/// BLAKE3 derive-key context of a part's verification pattern.
pub const PART_VP_CONTEXT: &str = "keyledger v1 master key part verification pattern";
/// BLAKE3 derive-key context of a master key's verification pattern.
pub const MASTER_KEY_VP_CONTEXT: &str = "keyledger v1 master key verification pattern";
/// BLAKE3 derive-key context of the KCV of keys that are not AES keys.
pub const OTHER_KCV_CONTEXT: &str = "keyledger v1 key check value";

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;

/// The HPKE `info` of a part: `PART_INFO_LABEL || 0x00 ||
/// u16be(len(instance)) || instance || u32be(generation) ||
/// u16be(len(owner_id)) || owner_id`. Names longer than 65535 bytes are refused.
pub fn part_info(instance: &str, generation: u32, owner_id: &str) -> Result<Vec<u8>, HsmError> {
    let mut out = Vec::with_capacity(PART_INFO_LABEL.len() + 9 + instance.len() + owner_id.len());
    out.extend_from_slice(PART_INFO_LABEL);
    out.push(0);
    push_len16(
        &mut out,
        instance.as_bytes(),
        "instance name longer than 65535 bytes",
    )?;
    out.extend_from_slice(&generation.to_be_bytes());
    push_len16(
        &mut out,
        owner_id.as_bytes(),
        "owner id longer than 65535 bytes",
    )?;
    Ok(out)
}

fn push_len16(out: &mut Vec<u8>, bytes: &[u8], too_long: &'static str) -> Result<(), HsmError> {
    let len = u16::try_from(bytes.len()).map_err(|_| HsmError::Invalid(too_long))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// A ceremony key pair: the X25519 private key that opens sealed parts
/// inside a backend, and its public key. Zeroized on drop; no `Debug`
/// beyond `[redacted]`.
pub struct CeremonyKey {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: [u8; 32],
}

impl std::fmt::Debug for CeremonyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CeremonyKey(public {}, private [redacted])",
            hex::encode(self.public)
        )
    }
}

impl CeremonyKey {
    /// A fresh key pair: `DeriveKeyPair(32 bytes from the OS RNG)` (RFC 9180 §7.1.3).
    pub fn generate() -> Result<Self, HsmError> {
        let ikm = os_random32()?;
        Ok(Self::from_ikm(&ikm[..]))
    }

    /// The key pair RFC 9180 `DeriveKeyPair(ikm)` gives (the key-owner CLI
    /// and tests use it for reproducible keys).
    pub fn from_ikm(ikm: &[u8]) -> Self {
        let (private, public) = Kem::derive_keypair(ikm);
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&public.to_bytes());
        CeremonyKey {
            private,
            public: pk,
        }
    }

    /// The key pair of a serialized (32-byte) X25519 private key.
    pub fn from_private(private: &SecretBytes) -> Result<Self, HsmError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(private.expose())
            .map_err(|_| HsmError::Invalid("ceremony private key must be 32 bytes"))?;
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&Kem::sk_to_pk(&sk).to_bytes());
        Ok(CeremonyKey {
            private: sk,
            public: pk,
        })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// Opens a part sealed to this key for (instance, generation, owner).
    pub fn open(
        &self,
        instance: &str,
        generation: u32,
        owner_id: &str,
        sealed: &SealedPart,
    ) -> Result<SecretBytes, HsmError> {
        let info = part_info(instance, generation, owner_id)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
            .map_err(|_| HsmError::BadPart)?;
        if sealed.ciphertext.len() != SEALED_CIPHERTEXT_LEN {
            return Err(HsmError::BadPart);
        }
        let plain = hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &self.private,
            &enc,
            &info,
            &sealed.ciphertext,
            b"",
        )
        .map_err(|_| HsmError::BadPart)?;
        let part = SecretBytes::new(plain);
        if part.len() != PART_LEN {
            return Err(HsmError::BadPart);
        }
        Ok(part)
    }
}

/// Seals a 32-byte part to a backend's ceremony public key for
/// (instance, generation, owner). Only that backend's ceremony key, with the
/// same three values, opens it.
pub fn seal_part(
    ceremony_public_key: &[u8; 32],
    instance: &str,
    generation: u32,
    owner_id: &str,
    part: &SecretBytes,
) -> Result<SealedPart, HsmError> {
    if part.len() != PART_LEN {
        return Err(HsmError::Invalid("master key part must be 32 bytes"));
    }
    let info = part_info(instance, generation, owner_id)?;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(ceremony_public_key)
        .map_err(|_| HsmError::Invalid("ceremony public key"))?;
    let mut rng = SeededRng::from_os()?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk,
        &info,
        part.expose(),
        b"",
        &mut rng,
    )
    .map_err(|_| HsmError::Invalid("ceremony public key"))?;
    Ok(SealedPart {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// Opens a sealed part with a serialized ceremony private key (32 bytes).
pub fn open_part(
    ceremony_private_key: &SecretBytes,
    instance: &str,
    generation: u32,
    owner_id: &str,
    sealed: &SealedPart,
) -> Result<SecretBytes, HsmError> {
    CeremonyKey::from_private(ceremony_private_key)?.open(instance, generation, owner_id, sealed)
}

/// What a key owner compares for a part: hex of the first 16 bytes of
/// `BLAKE3-derive-key(PART_VP_CONTEXT, part)`.
pub fn part_verification_pattern(part: &SecretBytes) -> String {
    verification_pattern(PART_VP_CONTEXT, part.expose())
}

/// What key owners and the log compare for a master key: hex of the first
/// 16 bytes of `BLAKE3-derive-key(MASTER_KEY_VP_CONTEXT, master_key)`.
pub fn master_key_verification_pattern(master_key: &SecretBytes) -> String {
    verification_pattern(MASTER_KEY_VP_CONTEXT, master_key.expose())
}

fn verification_pattern(context: &str, key: &[u8]) -> String {
    let digest = Zeroizing::new(blake3::derive_key(context, key));
    hex::encode(&digest[..16])
}

/// The master key from its parts: the XOR of all of them, so any strict
/// subset reveals nothing. Refuses fewer than 2 parts, parts that are not
/// 32 bytes, all-zero parts, identical parts (two would cancel out) and an
/// all-zero result.
pub fn combine_parts(parts: &[SecretBytes]) -> Result<SecretBytes, HsmError> {
    if parts.len() < 2 {
        let loaded = u8::try_from(parts.len()).unwrap_or(u8::MAX);
        return Err(HsmError::NotEnoughParts { needed: 2, loaded });
    }
    if parts.iter().any(|p| p.len() != PART_LEN) {
        return Err(HsmError::Invalid("master key part must be 32 bytes"));
    }
    let zero = [0u8; PART_LEN];
    if parts.iter().any(|p| ct_eq(p.expose(), &zero)) {
        return Err(HsmError::Invalid("master key part is all zeros"));
    }
    for (i, a) in parts.iter().enumerate() {
        if parts[i + 1..].iter().any(|b| a == b) {
            return Err(HsmError::Invalid("two master key parts are identical"));
        }
    }
    let mut key = Zeroizing::new([0u8; PART_LEN]);
    for part in parts {
        for (k, p) in key.iter_mut().zip(part.expose()) {
            *k ^= p;
        }
    }
    if ct_eq(&key[..], &zero) {
        return Err(HsmError::Invalid("master key parts combine to zero"));
    }
    Ok(SecretBytes::from_slice(&key[..]))
}

/// Key check value, hex: for AES keys (16, 24 or 32 bytes) the first 3
/// bytes of AES-ECB(key, 0^16), the standard KCV (PKCS#11 `CKA_CHECK_VALUE`
/// of `CKK_AES`). Keys of any other length (opaque standard-key payloads)
/// get the first 3 bytes of `BLAKE3-derive-key(OTHER_KCV_CONTEXT, key)`.
pub fn kcv(key: &[u8]) -> String {
    let mut block = Array::from([0u8; 16]);
    match key.len() {
        16 => encrypt_zero_block::<aes::Aes128>(key, &mut block),
        24 => encrypt_zero_block::<aes::Aes192>(key, &mut block),
        32 => encrypt_zero_block::<aes::Aes256>(key, &mut block),
        _ => {
            let digest = Zeroizing::new(blake3::derive_key(OTHER_KCV_CONTEXT, key));
            return hex::encode(&digest[..3]);
        }
    }
    let out = hex::encode(&block[..3]);
    block.zeroize();
    out
}

fn encrypt_zero_block<C: KeyInit + BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>>(
    key: &[u8],
    block: &mut aes::Block,
) {
    // The length was matched by the caller, so `new_from_slice` cannot fail.
    if let Ok(cipher) = C::new_from_slice(key) {
        cipher.encrypt_block(block);
    }
}

fn os_random32() -> Result<Zeroizing<[u8; 32]>, HsmError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut seed[..]).map_err(|e| HsmError::Backend(format!("OS RNG: {e}")))?;
    Ok(seed)
}

/// The RNG handed to HPKE for the ephemeral key: a BLAKE3 keyed XOF over 32
/// bytes from the OS RNG (fetched fallibly, so no panic if the OS RNG fails).
struct SeededRng {
    key: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl SeededRng {
    fn from_os() -> Result<Self, HsmError> {
        Ok(SeededRng {
            key: os_random32()?,
            counter: 0,
        })
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&self.counter.to_le_bytes());
        hasher.finalize_xof().fill(dst);
        self.counter = self.counter.wrapping_add(1);
        Ok(())
    }
}

impl TryCryptoRng for SeededRng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(byte: u8) -> SecretBytes {
        SecretBytes::from_slice(&[byte; 32])
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let key = CeremonyKey::generate().unwrap();
        let p = SecretBytes::random(32).unwrap();
        let sealed = seal_part(&key.public_key(), "inst", 1, "alice", &p).unwrap();
        assert_eq!(sealed.enc.len(), ENC_LEN);
        assert_eq!(sealed.ciphertext.len(), SEALED_CIPHERTEXT_LEN);
        assert_eq!(key.open("inst", 1, "alice", &sealed).unwrap(), p);
        assert_eq!(
            key.open("inst", 2, "alice", &sealed),
            Err(HsmError::BadPart)
        );
        assert_eq!(key.open("inst", 1, "bob", &sealed), Err(HsmError::BadPart));
        assert_eq!(
            key.open("inst2", 1, "alice", &sealed),
            Err(HsmError::BadPart)
        );
        let other = CeremonyKey::generate().unwrap();
        assert_eq!(
            other.open("inst", 1, "alice", &sealed),
            Err(HsmError::BadPart)
        );
    }

    #[test]
    fn private_key_round_trip() {
        let ikm = [7u8; 32];
        let a = CeremonyKey::from_ikm(&ikm);
        let mut sk = [0u8; 32];
        sk.copy_from_slice(&a.private.to_bytes());
        let b = CeremonyKey::from_private(&SecretBytes::from_slice(&sk)).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let p = part(9);
        let sealed = seal_part(&a.public_key(), "i", 3, "o", &p).unwrap();
        assert_eq!(
            open_part(&SecretBytes::from_slice(&sk), "i", 3, "o", &sealed).unwrap(),
            p
        );
        assert!(format!("{a:?}").contains("[redacted]"));
    }

    #[test]
    fn info_is_unambiguous() {
        assert_ne!(
            part_info("ab", 1, "c").unwrap(),
            part_info("a", 1, "bc").unwrap()
        );
        let long = "x".repeat(70_000);
        assert!(part_info(&long, 1, "o").is_err());
    }

    #[test]
    fn combine_refuses_degenerate_inputs() {
        assert_eq!(
            combine_parts(&[part(1)]),
            Err(HsmError::NotEnoughParts {
                needed: 2,
                loaded: 1
            })
        );
        assert!(combine_parts(&[part(1), part(1)]).is_err());
        assert!(combine_parts(&[part(1), SecretBytes::from_slice(&[2; 31])]).is_err());
        assert!(combine_parts(&[part(1), part(0)]).is_err());
        assert!(combine_parts(&[part(1), part(2), part(3)]).is_err()); // 1^2^3 = 0
        assert_eq!(combine_parts(&[part(1), part(2)]).unwrap(), part(3));
    }

    #[test]
    fn kcv_of_zero_aes256_key() {
        // AES-256(0^32, 0^16) = dc95c078a2408989ad48a21492842087 (FIPS-197 style known answer).
        assert_eq!(kcv(&[0u8; 32]), "dc95c0");
        // AES-128(0^16, 0^16) = 66e94bd4ef8a2c3b884cfa59ca342b2e.
        assert_eq!(kcv(&[0u8; 16]), "66e94b");
        assert_eq!(kcv(b"abc").len(), 6);
    }

    /// The worked example in docs/HSM.md ("Master-key ceremony").
    #[test]
    fn worked_example() {
        let (a, b) = (part(0x11), part(0x22));
        let mk = combine_parts(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(mk, part(0x33));
        assert_eq!(
            hex::encode(part_info("inst-1", 1, "alice").unwrap()),
            "6b65796c65646765722f76312f6d61737465722d6b65792d70617274\
             00\
             0006696e73742d31\
             00000001\
             0005616c696365"
        );
        assert_eq!(
            part_verification_pattern(&a),
            "2fcb5ab5a44c1e8b7444a1865b18ea61"
        );
        assert_eq!(
            part_verification_pattern(&b),
            "c4ef2ba51ddc833eda570acc4456cb08"
        );
        assert_eq!(
            master_key_verification_pattern(&mk),
            "b6a3b416358d56563313f6dd83608f03"
        );
        assert_eq!(kcv(mk.expose()), "a3869d");
    }
}
