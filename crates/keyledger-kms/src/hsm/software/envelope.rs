//! The AES-256-GCM envelope both the software HSM's wrapped material and its
//! data-key ciphertexts use: `nonce(12) || ciphertext || tag(16)`, with a
//! random 96-bit nonce. Public so the known-answer tests can drive the exact
//! code path with a fixed nonce.
//!
//! Nonces come from a per-thread AES-256-CTR keystream whose key is 32 bytes
//! from the OS RNG (one AES block per nonce, its first 12 bytes; re-keyed
//! every 2^20 nonces). GCM nonces need only be unique under a key: this is
//! as good as drawing each from the OS RNG, without a system call per
//! operation, which would cost more than the AES-GCM of a data key.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

use crate::hsm::HsmError;
use crate::secret::SecretBytes;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Shortest valid envelope (empty plaintext).
pub const MIN_LEN: usize = NONCE_LEN + TAG_LEN;

/// Seals `plaintext` with a fresh random nonce.
pub fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, HsmError> {
    let nonce = next_nonce()?;
    seal_with_nonce(cipher, &nonce, plaintext, aad)
}

/// Seals with a caller-chosen nonce (known-answer tests only: a nonce must
/// never repeat under a key).
pub fn seal_with_nonce(
    cipher: &Aes256Gcm,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, HsmError> {
    let mut out = Vec::with_capacity(MIN_LEN + plaintext.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let nonce = Nonce::from(*nonce);
    match cipher.encrypt_inout_detached(&nonce, aad, (&mut out[NONCE_LEN..]).into()) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(out)
        }
        Err(_) => {
            out.zeroize();
            Err(HsmError::Invalid("plaintext or associated data too long"))
        }
    }
}

/// Opens an envelope; any change to it, or another key or AAD, is
/// [`HsmError::Decrypt`].
pub fn open(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, HsmError> {
    if sealed.len() < MIN_LEN {
        return Err(HsmError::Decrypt);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = Nonce::try_from(nonce).map_err(|_| HsmError::Decrypt)?;
    let tag = Tag::try_from(tag).map_err(|_| HsmError::Decrypt)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher
        .decrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into(), &tag)
        .map_err(|_| HsmError::Decrypt)?;
    // Moves the buffer (no copy) into the secret; the emptied `Zeroizing` drops.
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

/// A fresh random 96-bit nonce from `rand`'s thread-local CSPRNG (ChaCha12,
/// seeded from and periodically reseeded by the OS RNG, fork-safe), so the
/// hot path makes no system call.
pub fn next_nonce() -> Result<[u8; NONCE_LEN], HsmError> {
    use rand::RngCore;
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng()
        .try_fill_bytes(&mut nonce)
        .map_err(|e| HsmError::Backend(format!("RNG: {e}")))?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{Array, KeyInit};

    #[test]
    fn round_trip_and_tamper() {
        let cipher = Aes256Gcm::new(&Array::from([3u8; 32]));
        let sealed = seal(&cipher, b"data key", b"aad").unwrap();
        assert_eq!(sealed.len(), MIN_LEN + 8);
        assert_eq!(
            open(&cipher, &sealed, b"aad").unwrap().expose(),
            b"data key"
        );
        assert_eq!(open(&cipher, &sealed, b"aaD"), Err(HsmError::Decrypt));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                open(&cipher, &bad, b"aad"),
                Err(HsmError::Decrypt),
                "byte {i}"
            );
        }
        assert_eq!(
            open(&cipher, &sealed[..MIN_LEN - 1], b"aad"),
            Err(HsmError::Decrypt)
        );
    }

    #[test]
    fn nonces_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(next_nonce().unwrap()));
        }
    }
}
