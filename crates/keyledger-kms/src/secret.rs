//! Secret byte strings: zeroized on drop, compared in constant time, never
//! printed (`Debug` shows `[redacted]`), no `Display`, no `Serialize`.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Owned secret bytes (key material, key parts, DEKs, tokens).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes` (the caller's buffer is moved, not copied).
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// Copies `bytes` into a new secret; the caller must zeroize its copy.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes(bytes.to_vec())
    }

    /// `len` random bytes from the operating system.
    pub fn random(len: usize) -> Result<Self, getrandom::Error> {
        let mut bytes = vec![0u8; len];
        getrandom::getrandom(&mut bytes)?;
        Ok(SecretBytes(bytes))
    }

    /// The secret bytes, for handing to a cipher.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for SecretBytes {
    /// Constant time in the contents (lengths are not secret).
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

/// Constant-time comparison of two byte strings (tokens, digests, tags).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_equality_is_by_value() {
        let a = SecretBytes::from_slice(b"super secret key bytes");
        assert_eq!(format!("{a:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&a)), "Some([redacted])");
        assert_eq!(a, SecretBytes::from_slice(b"super secret key bytes"));
        assert_ne!(a, SecretBytes::from_slice(b"super secret key bytez"));
        assert_ne!(a, SecretBytes::from_slice(b"short"));
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut a = SecretBytes::random(32).expect("rng");
        assert_eq!(a.len(), 32);
        a.zeroize();
        assert!(a.expose().iter().all(|b| *b == 0) || a.is_empty());
    }
}
